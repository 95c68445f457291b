"""A small dataset snapshot built straight from procedural-world renders, in the CONTRACTS format
(frames as jpgs in the object store, ``pairs.jsonl``, ``manifest.json``, a ``snapshots`` row): what
the trainer's tests, benches and quick experiments train on without running the synthesis pipeline,
and what the demo's prober is trained on (`univr media snapshot`).

One-shot, one-object 64×64 videos with ground-truth captions: unlike a handful of long synthesized
clips, 100+ distinct videos let a short CPU run generalise to held-out ones."""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, datetime
from typing import Any

import numpy as np
from PIL import Image

from shared import layout
from shared.db import init_db, session_scope, upsert
from shared.db.models import Snapshot
from shared.ids import stable_id
from shared.storage import get_store
from shared.world.describe import describe
from shared.world.render import render_frames
from shared.world.spec import sample_spec

FRAMES_PER_CLIP = 8  # CONTRACTS: a video side carries its clip's 8 frame keys


def _jpg(frame: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _store_clip(store, vid: str, frames: np.ndarray) -> tuple[list[str], str]:  # noqa: ANN001
    idx = np.linspace(0, len(frames) - 1, FRAMES_PER_CLIP).round().astype(int)
    keys = []
    for n, i in enumerate(idx):
        key = layout.frame_key(layout.clip_frame_prefix(vid), n)
        store.put_bytes(key, _jpg(frames[i]), "image/jpeg")
        keys.append(key)
    keyframe = layout.keyframe_key(vid)
    store.put_bytes(keyframe, _jpg(frames[len(frames) // 2]), "image/jpeg")
    return keys, keyframe


def _pairs(
    vid: str,
    spec: dict[str, Any],
    frames: list[str],
    keyframe: str,
    tasks: tuple[str, ...],
    negatives: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    video = {"clip_id": vid, "frames": frames}
    sides: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
        "T2V": ({"text": describe(spec, "concise")}, {"video": video}),
        "I2V": ({"image": keyframe}, {"video": video}),
        "T2I": ({"text": describe(spec, "spatial")}, {"image": keyframe}),
    }
    unknown = set(tasks) - set(sides)
    if unknown:
        raise ValueError(
            f"the world snapshot builder makes {sorted(sides)} pairs, not {sorted(unknown)}"
        )
    out = []
    for task in tasks:
        query, target = sides[task]
        pair: dict[str, Any] = {
            "id": stable_id("pair", vid, task),
            "task": task,
            "domain": "synthetic",
            "video_id": vid,
            "dedup_cluster": vid,
            "query": query,
            "target": target,
        }
        if "video" in target and negatives:
            pair["hard_negatives"] = [{"video": n} for n in negatives]
        out.append(pair)
    return out


def build_world_snapshot(
    n_videos: int,
    seed: int = 0,
    *,
    size: tuple[int, int] = (64, 64),
    name: str = "world",
    tasks: tuple[str, ...] = ("T2V", "I2V", "T2I"),
    hard_negatives: int = 0,
) -> str:
    """Render ``n_videos`` one-shot, one-object videos and store a snapshot of their pairs; returns
    the snapshot id. ``hard_negatives``: other clips attached to each video pair as explicit
    negatives."""
    rng = random.Random(seed)
    store = get_store()
    clips = []
    for i in range(n_videos):
        vid = f"{name}-{seed}-{i:04d}"
        spec = sample_spec(
            rng, vid, shots=1, n_objects=1, fps=FRAMES_PER_CLIP, size=size, shot_s=(1.0, 1.0)
        )
        frames, keyframe = _store_clip(
            store, vid, render_frames(spec, noise_seed=seed * 100_003 + i)
        )
        clips.append((vid, spec, frames, keyframe))
    pairs = []
    for vid, spec, frames, keyframe in clips:
        others = [c for c in clips if c[0] != vid]
        negs = [
            {"clip_id": c[0], "frames": c[2]}
            for c in rng.sample(others, min(hard_negatives, len(others)))
        ]
        pairs += _pairs(vid, spec, frames, keyframe, tasks, negs)
    snapshot_id = stable_id("snapshot", name, n_videos, seed, size, tasks, hard_negatives)
    pairs_key = layout.pairs_jsonl_key(snapshot_id)
    store.put_bytes(
        pairs_key, "".join(json.dumps(p) + "\n" for p in pairs).encode(), "application/x-ndjson"
    )
    counts = {t: sum(p["task"] == t for p in pairs) for t in tasks}
    manifest = {
        "id": snapshot_id,
        "name": name,
        "created_at": datetime.now(UTC).isoformat(),
        "counts": counts,
        "pairs_key": pairs_key,
        "splits": {"train": len(pairs)},
    }
    manifest_key = layout.manifest_key(snapshot_id)
    store.put_bytes(manifest_key, json.dumps(manifest).encode(), "application/json")
    init_db()
    with session_scope() as s:
        upsert(
            s,
            Snapshot,
            [{"id": snapshot_id, "name": name, "manifest_key": manifest_key, "counts": counts}],
        )
    return snapshot_id
