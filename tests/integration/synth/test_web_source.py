"""A URL manifest served by a loopback HTTP server ingests end to end with real worker processes
(issue #17, point 4): good URLs become clips and pairs, every bad URL is an item with its reason,
a cut answer resumes with Range on the task's retry, and a job run again over the same manifest
fetches no finished file a second time."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from services.synth.jobs import run
from shared import layout
from shared.db import session_scope
from shared.db.models import Clip, Pair, Video
from shared.storage import get_store
from tests.helpers import small_videos
from tests.web_server import web_server


def _manifest_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "UNIVR_SYNTH__DOWNLOAD__ALLOW_NETWORKS": '["127.0.0.1/32"]',  # the test server only
        "UNIVR_SYNTH__DOWNLOAD__RETRIES": "0",  # a cut answer: the task's retry resumes it
        "UNIVR_SYNTH__DOWNLOAD__READ_TIMEOUT_S": "1",
        "UNIVR_SYNTH__DOWNLOAD__PER_HOST_INTERVAL_S": "0",
        "UNIVR_SYNTH__DOWNLOAD__MAX_BYTES": str(20 * 1024**2),
        "UNIVR_SYNTH__PRESET": "tiny",
    }.items():
        monkeypatch.setenv(key, value)
    from shared.config import get_settings

    get_settings.cache_clear()


@pytest.mark.slow
def test_url_manifest_end_to_end_with_reasons_and_resume(tmp_path, monkeypatch):
    """The embedded profile (filesystem broker, SQLite) with local worker processes."""
    _manifest_env(monkeypatch)
    _scenario(tmp_path)


@pytest.mark.rabbitmq
@pytest.mark.postgres
@pytest.mark.slow
def test_url_manifest_through_rabbitmq_and_postgres(
    stack_env, rabbitmq_url, postgres_url, tmp_path, monkeypatch
):
    _manifest_env(monkeypatch)
    stack_env(rabbitmq_url, postgres_url)
    _scenario(tmp_path)


def _scenario(tmp_path) -> None:  # noqa: ANN001
    videos = small_videos(tmp_path / "v", 3, seed=5)
    with web_server() as web:
        good = []
        for p in videos:
            web.files[f"/files/{p.name}"] = p.read_bytes()
            good.append(web.url(f"/files/{p.name}"))
        cut = f"/files/{videos[0].name}"  # its first answer is cut: the retry asks for the rest
        web.cut_after[cut], web.cut_times[cut] = 20_000, 1
        bad = {
            web.url("/missing.mp4"): "HTTP 404",
            web.url("/redirect-private"): "169.254.169.254",
            web.url("/huge-announced"): "larger than",
            "ftp://127.0.0.1/x.mp4": "unsupported URL scheme",
        }
        manifest = tmp_path / "webvid.csv"
        rows = [f"{i},{url},PT5S,d,video {i}" for i, url in enumerate([*good, *bad])]
        manifest.write_text("videoid,contentUrl,duration,page_dir,name\n" + "\n".join(rows) + "\n")

        summary = run(str(manifest), workers=1, timeout_s=600)
        by_url = {it["item"]: it for it in summary["items"]}
        assert summary["state"] == "completed", summary["counts"]
        for url in good:
            assert by_url[url]["state"] == "done", by_url[url]
        for url, reason in bad.items():
            item = by_url[url]
            assert item["state"] == "rejected" and reason in (item["reason"] or ""), item
        assert web.ranges == [(cut, "bytes=20000-")]
        assert web.bytes_sent[cut] == len(web.files[cut])  # nothing fetched twice
        with session_scope() as s:
            uris = set(s.scalars(select(Video.uri).join(Clip, Clip.video_id == Video.id)))
            pairs = s.scalar(select(func.count()).select_from(Pair))
        assert set(good) <= uris and pairs > 0
        raw = sorted(get_store().list(layout.RAW))
        assert len(raw) == len(good)

        # the same manifest again (a fresh job): finished files are in the store, not refetched
        hits = {f"/files/{p.name}": web.hits[f"/files/{p.name}"] for p in videos}
        again = run(str(manifest), workers=1, timeout_s=600, fresh=True)
        assert again["state"] == "completed" and again["job"] != summary["job"]
        assert {k: web.hits[k] for k in hits} == hits
        assert sorted(get_store().list(layout.RAW)) == raw
