"""The cross-modal consistency filter (SPEC §3.2): every clip's caption–video similarity is
recorded, and the clips below the threshold stop being kept, with the reason; their objects and
Frame rows
go."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from services.synth import stages
from shared.db import session_scope, upsert
from shared.db.models import Clip, Frame, Video
from shared.db.session import init_db
from shared.storage import get_store


@pytest.fixture
def clips(tiny_model_dir, monkeypatch) -> Iterator[list[Clip]]:  # noqa: ANN001
    monkeypatch.setenv("UNIVR_MODEL__NAME_OR_PATH", str(tiny_model_dir))
    monkeypatch.setenv("UNIVR_MODEL__DEVICE", "cpu")
    stages.get_settings.cache_clear()
    stages._embedder.cache_clear()
    init_db()
    store, rng = get_store(), np.random.default_rng(0)
    rows = [
        {
            "id": f"c{i}",
            "video_id": "v",
            "start_ms": 1000 * i,
            "end_ms": 1000 * (i + 1),
            "kept": True,
            "object_key": f"clips/c{i}/clip.mp4",
            "frame_prefix": f"clips/c{i}/frames/",
        }
        for i in range(3)
    ]
    frames = []
    for row in rows:
        colour = rng.integers(0, 255, 3, dtype=np.uint8)
        jpg = stages._jpeg(np.broadcast_to(colour, (32, 32, 3)).copy())
        for i, key in enumerate([*stages.frame_keys(row["id"], 8), stages.keyframe_key(row["id"])]):
            store.put_bytes(key, jpg, "image/jpeg")
            frames.append(
                {
                    "id": f"{row['id']}-{i}",
                    "clip_id": row["id"],
                    "index": i % 8,
                    "time_ms": 0,
                    "object_key": key,
                    "kind": "keyframe" if i == 8 else "sample",
                }
            )
        store.put_bytes(row["object_key"], b"mp4", "video/mp4")
    with session_scope() as db:
        upsert(db, Video, [{"id": "v", "uri": "mem://v", "status": "ok"}])
        upsert(db, Clip, rows)
        upsert(db, Frame, frames)
    yield list(_rows().values())
    stages._embedder.cache_clear()


def _objects(cid: str) -> list[str]:
    return list(get_store().list(f"clips/{cid}/"))


def _frame_rows(cid: str) -> int:
    with session_scope() as db:
        return db.query(Frame).filter(Frame.clip_id == cid).count()


def _rows() -> dict[str, Clip]:
    with session_scope() as db:
        got = {c.id: c for c in db.query(Clip).all()}
        db.expunge_all()
    return got


def test_every_score_is_recorded_and_clips_below_the_threshold_are_dropped(clips):
    captions = {c.id: f"a {w} square" for c, w in zip(clips, ["red", "green", "blue"], strict=True)}
    assert stages.consistency_filter(clips, captions, threshold=-1.0) == []
    scores = {cid: c.filter_scores["consistency"] for cid, c in _rows().items()}
    assert set(scores) == {"c0", "c1", "c2"} and all(-1 <= s <= 1 for s in scores.values())
    assert all(c.kept for c in _rows().values())
    assert all(len(_objects(c.id)) == 10 and _frame_rows(c.id) == 9 for c in clips)
    low = sorted(scores.values())
    cut = (low[1] + low[2]) / 2  # the two lowest fall below it (scores are recorded rounded)
    dropped = stages.consistency_filter(clips, captions, threshold=cut)
    rows = _rows()
    assert (
        sorted(dropped) == sorted(cid for cid, s in scores.items() if s < cut) and len(dropped) == 2
    )
    for cid, row in rows.items():
        assert row.kept == (cid not in dropped)
        assert (row.reject_reason is not None and "consistency" in row.reject_reason) == (
            cid in dropped
        )
        # a dropped clip's mp4, frames and keyframe leave the store, and its Frame rows the database
        want = (0, 0, None) if cid in dropped else (10, 9, f"clips/{cid}/clip.mp4")
        assert (len(_objects(cid)), _frame_rows(cid), row.object_key) == want


def test_a_retried_caption_stage_removes_what_a_dropped_clip_left_in_the_store(clips):
    with (
        session_scope() as db
    ):  # the filter dropped c0, then the attempt died before deleting its objects
        row = db.get(Clip, "c0")
        row.kept, row.reject_reason = False, "caption does not match the clip"
    stages.caption_stage("v")
    assert _objects("c0") == [] and _frame_rows("c0") == 0 and _rows()["c0"].object_key is None
    assert all(
        len(_objects(c)) == 10 and _frame_rows(c) == 9 for c in ("c1", "c2")
    )  # kept clips keep theirs
