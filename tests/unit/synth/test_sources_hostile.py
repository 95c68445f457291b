"""Hostile manifests and folders (issue #19, finding 4): every bad row becomes a rejected item
with a short reason, the other rows go on; a manifest that cannot be read as a whole is one
clear error; paths are normalised before dedup."""

from __future__ import annotations

import json
import os

import pytest

from services.synth.manifest import ManifestError
from services.synth.sources import list_directory, list_manifest


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    return tmp_path


def _by_reason(items) -> dict[str | None, list[str]]:  # noqa: ANN001
    out: dict[str | None, list[str]] = {}
    for it in items:
        out.setdefault(it.reject, []).append(it.uri)
    return out


def test_bad_jsonl_rows_become_rejected_items(folder):
    m = folder / "m.jsonl"
    rows = [
        json.dumps({"path": "a.mp4", "caption": "ok"}),
        "[1, 2]",
        "7",
        "{not json",
        json.dumps({"path": "b" * 300 + ".mp4"}),
        json.dumps({"path": "x/" + "c" * 10_000_000}),
        json.dumps({"path": "a.mp4", "sidecar": "bad.json"}),
    ]
    (folder / "bad.json").write_text("{nope")
    m.write_text("\n".join(rows) + "\n")
    items = list_manifest(m)
    assert len(items) == len(rows)
    assert items[0].reject is None and items[0].local_path == str(folder / "a.mp4")
    reasons = [it.reject for it in items[1:]]
    assert "not a JSON object" in reasons[0] and "not a JSON object" in reasons[1]
    assert "invalid JSON" in reasons[2]
    assert "longer than 255" in reasons[3]
    assert "longer than" in reasons[4] and len(items[5].uri) < 2000
    assert "sidecar" in reasons[5] and "not readable JSON" in reasons[5]
    assert all(len(r) < 600 for r in reasons)


def test_a_csv_with_a_bom_and_a_huge_field(folder):
    m = folder / "m.csv"
    m.write_text(
        "\ufeffpath,caption\na.mp4,fine\nsub/../a.mp4,again\n"
        f'a.mp4,"{"z" * 200_000}"\nsub/../sub/../missing.mp4,x\n',
        encoding="utf-8",
    )
    items = list_manifest(m)
    assert items[0].reject is None and items[0].raw_caption == "fine"
    assert "same video as an earlier row" in items[1].reject  # normalised, then deduplicated
    assert "CSV" in items[2].reject or "longer than" in items[2].reject
    assert items[3].reject == "file not found" and items[3].uri == str(folder / "missing.mp4")
    assert len({it.uri for it in items}) == len(items)


def test_a_csv_without_a_header_is_a_clear_error(folder):
    m = folder / "m.csv"
    m.write_text("a.mp4,a caption\nb.mp4,another\n")
    with pytest.raises(ManifestError, match="no header naming a video column"):
        list_manifest(m)


@pytest.mark.parametrize("content", ["42", '"text"', "{broken"])
def test_a_json_manifest_that_is_not_a_list_of_objects(folder, content):
    m = folder / "m.json"
    m.write_text(content)
    with pytest.raises(ManifestError):
        list_manifest(m)


def test_a_json_list_with_odd_entries(folder):
    m = folder / "m.json"
    m.write_text(json.dumps([{"path": "a.mp4"}, 5, ["x"], {"caption": "no path"}]))
    reasons = [it.reject for it in list_manifest(m)]
    assert reasons[0] is None
    assert "not a JSON object" in reasons[1] and "not a JSON object" in reasons[2]
    assert "names no video" in reasons[3]


def test_a_fifo_in_a_folder_is_a_rejected_item(folder):
    os.mkfifo(folder / "pipe.mp4")
    items = {it.uri: it for it in list_directory(folder)}
    assert items[str(folder / "a.mp4")].reject is None
    assert "not a regular file" in items[str(folder / "pipe.mp4")].reject


def test_the_submission_fails_the_job_with_the_reason(folder, univr_home):
    """Through the API's task: a headerless CSV fails its job with the reason, no traceback."""
    from services.synth.tasks import submit_source
    from shared.db import init_db, session_scope
    from shared.db.models import Job, JobState

    m = folder / "m.csv"
    m.write_text("a.mp4,a caption\n")
    init_db()
    with session_scope() as s:
        s.add(Job(id="j1", kind="synth", state=JobState.pending, params={"source": str(m)}))
    out = submit_source("j1", {"source": str(m)})
    assert "no header" in out["error"]
    with session_scope() as s:
        job = s.get(Job, "j1")
        assert job.state == JobState.failed and "no header naming a video column" in job.error
