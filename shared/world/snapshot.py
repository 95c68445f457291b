"""A small dataset snapshot built straight from procedural-world renders, in the CONTRACTS format
(frames as jpgs in the object store, ``pairs.jsonl``, ``manifest.json``, a ``snapshots`` row): what
the trainer's tests, benches and quick experiments train on without running the synthesis pipeline,
and what the demo's prober is trained on (`univr media snapshot`).

One-shot, one-object 64×64 videos with ground-truth captions: unlike a handful of long synthesized
clips, 100+ distinct videos let a short CPU run generalise to held-out ones.

With ``twins`` > 1 the videos come in groups that differ in exactly one attribute their T2V caption
names (the object's colour, shape, size or motion, or the background): near neighbours that only
a fine distinction tells apart, as in real data where many videos share most of what a caption
says. A group is one split unit (its ids share a split bucket, ``is_heldout``), so held-out
videos meet their twins at evaluation."""

from __future__ import annotations

import copy
import io
import json
import random
from datetime import UTC, datetime
from typing import Any

import numpy as np
from PIL import Image

from shared import layout
from shared.contracts.snapshot import split_bucket
from shared.db import init_db, session_scope, upsert
from shared.db.models import Snapshot
from shared.ids import stable_id
from shared.storage import get_store
from shared.world.describe import describe
from shared.world.render import render_frames
from shared.world.spec import sample_spec
from shared.world.vocab import BACKGROUNDS, COLORS, DIRECTIONS, SHAPES, SIZES

FRAMES_PER_CLIP = 8  # CONTRACTS: a video side carries its clip's 8 frame keys
# what a twin changes, in turn: each is named by the concise (T2V) caption
TWIN_CHANGES = ("color", "background", "shape", "motion", "size")


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


def _twin_id(stem: str, bucket: int) -> str:
    """``stem`` with the first suffix that puts it in split ``bucket`` (~1000 tries)."""
    salt = 0
    while split_bucket(f"{stem}-{salt}") != bucket:
        salt += 1
    return f"{stem}-{salt}"


def _twin(rng: random.Random, spec: dict[str, Any], change: str) -> dict[str, Any]:
    """``spec`` with one attribute of its (single) object or shot changed to another value."""
    twin = copy.deepcopy(spec)
    shot = twin["shots"][0]
    obj = shot["objects"][0]
    if change == "background":
        shot["background"] = rng.choice([b for b in BACKGROUNDS if b != shot["background"]])
        return twin
    choices = {"color": list(COLORS), "shape": list(SHAPES), "size": list(SIZES)}
    if change in choices:
        obj[change] = rng.choice([v for v in choices[change] if v != obj[change]])
        return twin
    # motion: another direction (a still object starts moving), restarted on the opposite side
    old = obj["motion"]
    obj["motion"] = rng.choice([d for d in DIRECTIONS if d != old])
    dx, dy = DIRECTIONS[obj["motion"]]
    ox, oy = DIRECTIONS.get(old, (0.0, 0.0))
    obj["x"] = round(obj["x"] + 0.25 * (ox - dx), 3)
    obj["y"] = round(obj["y"] + 0.25 * (oy - dy), 3)
    shot["events"] = [e for e in shot["events"] if e["kind"] != "moves"]
    shot["events"].append(
        {
            "t_s": round(obj["appear_s"] + 0.01, 2),
            "kind": "moves",
            "subject": obj["id"],
            "detail": obj["motion"],
        }
    )
    shot["events"].sort(key=lambda e: (e["t_s"], e["subject"]))
    return twin


def _specs(
    rng: random.Random, name: str, seed: int, n_videos: int, size: tuple[int, int], twins: int
) -> list[tuple[str, dict[str, Any]]]:
    """``n_videos`` (id, spec): independent videos, or groups of ``twins``."""
    out: list[tuple[str, dict[str, Any]]] = []
    for i in range(n_videos):
        if twins > 1 and i % twins:
            group, k = divmod(i, twins)
            base_id, base = out[group * twins]
            change = TWIN_CHANGES[(group + k - 1) % len(TWIN_CHANGES)]
            vid = _twin_id(f"{name}-{seed}-{group:04d}-t{k}", split_bucket(base_id))
            out.append((vid, dict(_twin(rng, base, change), id=vid)))
            continue
        vid = f"{name}-{seed}-{i:04d}"
        spec = sample_spec(
            rng, vid, shots=1, n_objects=1, fps=FRAMES_PER_CLIP, size=size, shot_s=(1.0, 1.0)
        )
        out.append((vid, spec))
    return out


def build_world_snapshot(
    n_videos: int,
    seed: int = 0,
    *,
    size: tuple[int, int] = (64, 64),
    name: str = "world",
    tasks: tuple[str, ...] = ("T2V", "I2V", "T2I"),
    hard_negatives: int = 0,
    twins: int = 1,
) -> str:
    """Render ``n_videos`` one-shot, one-object videos and store a snapshot of their pairs; returns
    the snapshot id. ``hard_negatives``: other clips attached to each video pair as explicit
    negatives (random ones); ``twins``: videos in groups of that many near neighbours."""
    if twins < 1:
        raise ValueError(f"twins must be at least 1, not {twins}")
    rng = random.Random(seed)
    store = get_store()
    clips = []
    for i, (vid, spec) in enumerate(_specs(rng, name, seed, n_videos, size, twins)):
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
    key = (name, n_videos, seed, size, tasks, hard_negatives) + ((twins,) if twins > 1 else ())
    snapshot_id = stable_id("snapshot", *key)
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
