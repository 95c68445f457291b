"""Test helpers shared across areas: a tiny bundle built once per session, small generated
videos, snapshot pairs written as synthesized rows."""

from __future__ import annotations

import random
from pathlib import Path

from shared.model.tiny import build_tiny_bundle
from shared.world import render, sample_spec

_BUNDLES: dict[str, Path] = {}


def tiny_bundle(tmp_root: Path, seed: int = 0) -> Path:
    key = f"{tmp_root}:{seed}"
    if key not in _BUNDLES:
        _BUNDLES[key] = build_tiny_bundle(tmp_root / f"tiny-{seed}", seed)
    return _BUNDLES[key]


def small_videos(folder: Path, n: int, seed: int = 0, **kw) -> list[Path]:  # noqa: ANN003
    rng = random.Random(seed)
    return [
        render(sample_spec(rng, f"t{seed}-{i}", **kw), folder / f"t{seed}-{i}.mp4")
        for i in range(n)
    ]


def pairs_as_synthesized_rows(pairs: list[dict]) -> None:
    """Snapshot pairs (e.g. ``shared.world.snapshot``'s, whose clip id is the video id) written as
    synthesized ``Pair`` rows, their videos and clips stored, so ``create_snapshot`` takes them."""
    from shared.db import init_db, session_scope, upsert
    from shared.db.models import Clip, Frame, Pair, Video

    init_db()
    vids = sorted({p["video_id"] for p in pairs})
    keys = ("id", "task", "domain", "video_id", "dedup_cluster", "query", "target")
    with session_scope() as s:
        upsert(s, Video, [{"id": v, "uri": f"/{v}"} for v in vids])
        clip = {"start_ms": 0, "end_ms": 1000, "kept": True}
        upsert(s, Clip, [{"id": v, "video_id": v, **clip} for v in vids])
        frame = {"index": 0, "time_ms": 0, "object_key": "k"}
        upsert(s, Frame, [{"id": f"f-{v}", "clip_id": v, **frame} for v in vids])
        upsert(s, Pair, [{k: p[k] for k in keys} | {"hard_negatives": []} for p in pairs])
