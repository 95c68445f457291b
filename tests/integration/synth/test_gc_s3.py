"""`univr synth gc` on an S3 store (moto's S3 server through the real minio client): listing
dates come from the server; live objects and anything within the grace period stay."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from services.synth.gc import collect_garbage
from shared.config import get_settings
from shared.db import init_db, session_scope, upsert
from shared.db.models import Clip, Frame, Video
from shared.storage import S3Store, get_store


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop()


def test_gc_on_s3(s3_endpoint, monkeypatch):
    for k, v in {
        "BACKEND": "s3",
        "ENDPOINT": s3_endpoint,
        "ACCESS_KEY": "testing",
        "SECRET_KEY": "testing",
        "BUCKET": f"univr-{uuid.uuid4().hex[:12]}",
    }.items():
        monkeypatch.setenv(f"UNIVR_STORAGE__{k}", v)
    get_settings.cache_clear()
    init_db()
    store = get_store()
    assert isinstance(store, S3Store)
    old = datetime.now(UTC) - timedelta(days=3)
    with session_scope() as s:
        upsert(s, Video, [{"id": "v", "uri": "mem://v", "status": "ok"}])
        upsert(
            s,
            Clip,
            [
                {
                    "id": "live",
                    "video_id": "v",
                    "start_ms": 0,
                    "end_ms": 1000,
                    "kept": True,
                    "claimed_at": old,
                    "object_key": "clips/live/clip.mp4",
                },
                {
                    "id": "failed",
                    "video_id": "v",
                    "start_ms": 1000,
                    "end_ms": 2000,
                    "kept": False,
                    "claimed_at": old,
                    "reject_reason": "its objects could not be stored",
                    "object_key": "clips/failed/clip.mp4",
                },
            ],
        )
        upsert(
            s,
            Frame,
            [
                {
                    "id": "f",
                    "clip_id": "live",
                    "index": 0,
                    "time_ms": 0,
                    "object_key": "clips/live/frames/00.jpg",
                }
            ],
        )
    for key in (
        "clips/live/clip.mp4",
        "clips/live/frames/00.jpg",
        "videos/v/frames/00.jpg",
        "clips/failed/clip.mp4",
        "clips/failed/frames/00.jpg",
        "clips/nobody/clip.mp4",
        "videos/gone/frames/00.jpg",
        "reports/r.html",
    ):
        store.put_bytes(key, b"x" * 10)
    infos = {i.key: i for i in store.list_info("clips/")}
    assert len(infos) == 5 and all(
        i.size == 10 and i.modified.tzinfo is not None for i in infos.values()
    )
    assert (
        collect_garbage(grace_s=3600)["skipped_recent"] == 3
    )  # just written: a job may be writing them
    report = collect_garbage(grace_s=0)
    assert (
        report["objects_deleted"],
        report["clips"],
        report["videos"],
        report["rows_unmarked"],
    ) == (4, 2, 1, 1)
    assert sorted(store.list("")) == [
        "clips/live/clip.mp4",
        "clips/live/frames/00.jpg",
        "reports/r.html",
        "videos/v/frames/00.jpg",
    ]
    with session_scope() as s:
        assert s.get(Clip, "failed").object_key is None and s.get(Clip, "live").kept
