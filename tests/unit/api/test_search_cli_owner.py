"""One owner of the embedded Qdrant folder (issue #14 item 4): while ``univr api serve`` holds
it, ``univr search`` goes through that API; without one, it opens the folder itself; when another
process holds the folder, it says so instead of crashing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.api.conftest import served_api


def _univr(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "univr"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def home_with_index(univr_home, tiny_model_dir, monkeypatch):
    """A local Qdrant folder with a live collection of three points (the tiny model's size)."""
    import uuid

    from qdrant_client import models

    from shared.config import get_settings
    from shared.model import Embedder, EmbedInput
    from shared.vectors import get_qdrant

    monkeypatch.setenv("UNIVR_MODEL__NAME_OR_PATH", str(tiny_model_dir))
    get_settings.cache_clear()
    dim = len(Embedder.from_settings().embed([EmbedInput(text="probe")])[0])
    client = get_qdrant()
    client.create_collection(
        "univr-cli", vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE)
    )
    ids = [str(uuid.uuid4()) for _ in range(3)]
    client.upsert(
        "univr-cli",
        points=[
            models.PointStruct(
                id=cid,
                vector=[float(i == j) + 0.1 for j in range(dim)],
                payload={
                    "kind": "clip",
                    "clip_id": cid,
                    "video_id": cid,
                    "video": f"/data/v{i}.mp4",
                    "start_ms": 0,
                    "end_ms": 1000,
                    "duration_s": 1.0,
                    "caption": f"c{i}",
                },
            )
            for i, cid in enumerate(ids)
        ],
    )
    client.update_collection_aliases(
        change_aliases_operations=[
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(
                    collection_name="univr-cli", alias_name=get_settings().vectors.alias
                )
            )
        ]
    )
    client.close()
    env = {
        **os.environ,
        "UNIVR_HOME": str(univr_home),
        "UNIVR_MODEL__NAME_OR_PATH": str(tiny_model_dir),
    }
    return {"env": env, "ids": ids}


def test_search_goes_through_the_running_api(home_with_index, tmp_path):
    env = home_with_index["env"]
    with served_api(env, tmp_path / "api.log"):
        r = _univr("search", "a red circle", "--top-k", "2", "--json", env=env)
        assert r.returncode == 0, r.stderr
        hits = json.loads(r.stdout)
        assert len(hits) == 2 and {h["clip_id"] for h in hits} <= set(home_with_index["ids"])
        assert "Traceback" not in r.stderr
    owner = Path(f"{os.path.abspath(Path(env['UNIVR_HOME']) / 'qdrant')}.api.json")
    assert not any(p.name.endswith(".api.json") for p in Path(env["UNIVR_HOME"]).iterdir()), owner
    r = _univr("search", "a red circle", "--top-k", "1", "--json", env=env)  # no API: local
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["video"].startswith("/data/")


def test_a_file_of_queries_is_answered_in_order_by_one_process(home_with_index, tmp_path):
    """`--queries`: each line's answer equals the same query searched alone, in file order."""
    from PIL import Image

    from services.api.search import search
    from shared.model import Embedder
    from shared.vectors import get_qdrant

    image = tmp_path / "q.png"
    Image.new("RGB", (40, 30), (200, 30, 30)).save(image)
    asked = [{"text": "a red circle"}, {"image": str(image)}, {"text": "blue", "image": str(image)}]
    path = tmp_path / "queries.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in asked) + "\n")
    embedder, client = Embedder.from_settings(), get_qdrant()
    try:  # this process holds the Qdrant folder until it closes it
        alone = [_found(search(embedder, client, top_k=2, **q)) for q in asked]
    finally:
        client.close()
    env = home_with_index["env"]
    r = _univr("search", "--queries", str(path), "--top-k", "2", "--json", env=env)
    assert r.returncode == 0, r.stderr
    answers = json.loads(r.stdout)
    assert [a["query"] for a in answers] == asked
    assert [_found(a["hits"]) for a in answers] == alone
    assert len({tuple(a) for a in alone}) == len(asked)  # each query finds its own answer


def _found(hits: list[dict]) -> list[tuple[str, float]]:
    return [(h["id"], round(h["score"], 4)) for h in hits]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["{"], "queries.jsonl:1: not JSON"),
        (['{"text": "a"}', '["a"]'], "queries.jsonl:2: a query is an object"),
        (['{"text": "a", "audio": "x.wav"}'], "queries.jsonl:1: a query is an object"),
        (['{"text": 3}'], "queries.jsonl:1: text, image and video are strings"),
        (["", "  "], "holds no query"),
        (['{"text": ""}'], "give a text, --image or --video"),
        (['{"video": "/nonexistent/v.mp4"}'], "no such file /nonexistent/v.mp4"),
    ],
)
def test_a_bad_queries_file_is_a_usage_error_naming_its_line(tmp_path, lines, message):
    from typer.testing import CliRunner

    from shared.cli import build_app

    path = tmp_path / "queries.jsonl"
    path.write_text("\n".join(lines) + "\n")
    r = CliRunner().invoke(build_app(["search"]), ["search", "--queries", str(path)])
    assert r.exit_code == 2 and message in r.output, r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["a red circle", "--queries", "{path}"], "give either --queries or one query"),
        (["--queries", "{missing}"], "cannot read"),
        (["--queries", "{binary}"], "cannot read"),
        (["--queries", "{folder}"], "cannot read"),
    ],
)
def test_queries_with_a_query_or_an_unreadable_file_are_usage_errors(tmp_path, args, message):
    from typer.testing import CliRunner

    from shared.cli import build_app

    paths = {"path": tmp_path / "q.jsonl", "missing": tmp_path / "nope.jsonl"}
    paths |= {"binary": tmp_path / "b.jsonl", "folder": tmp_path}
    paths["path"].write_text('{"text": "a"}\n')
    paths["binary"].write_bytes(b"\xff\xfe\x00junk")
    argv = ["search", *(a.format(**paths) for a in args)]
    r = CliRunner().invoke(build_app(["search"]), argv)
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output, r.output


def test_a_held_folder_is_a_clear_error_not_a_crash(home_with_index):
    from shared.vectors import get_qdrant

    client = get_qdrant()  # this process holds the folder now (as an index build would)
    try:
        r = _univr("search", "a red circle", env=home_with_index["env"])
    finally:
        client.close()
    assert r.returncode == 1
    assert "in use by another process" in r.stderr and "Traceback" not in r.stderr
