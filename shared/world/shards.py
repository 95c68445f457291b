"""Synthetic snapshots written straight to the object store as Parquet shards with their manifest,
in the layout ``univr data snapshot`` writes (``services.synth.snapshot``), without a database:
what the trainer's lazy reader is tested and benchmarked on. ``synthetic_pairs`` makes any number
of plausible pairs (every task, clusters shared by several pairs, imported datasets, hard
negatives) one at a time."""

from __future__ import annotations

import json
import random
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from shared import layout
from shared.contracts.pairs import TASKS
from shared.contracts.snapshot import SnapshotManifest, is_heldout
from shared.snapshots import COLUMNS, JSON_COLUMNS, ShardFiles, upload_shards

ROW_GROUP = 1000  # rows per write, as the snapshot job's pages


def _video(clip: str) -> dict[str, Any]:
    return {"clip_id": clip, "frames": layout.frame_keys(clip, 4), "fps": 2.0}


def synthetic_pairs(n: int, seed: int = 0, videos: int | None = None) -> Iterator[dict[str, Any]]:
    """``n`` pairs over ``videos`` source videos (default n/8), four clips each."""
    rng = random.Random(seed)
    videos = videos or max(2, n // 8)
    for i in range(n):
        v = rng.randrange(videos)
        clip = f"v{v:06d}-c{rng.randrange(4)}"
        task = TASKS[i % len(TASKS)]
        words = " ".join(
            rng.choice(("a red", "the tall", "two", "slowly", "a dog", "walks")) for _ in range(12)
        )
        query: dict[str, Any] = {"text": f"{words} ({i})"}
        if task in ("TV2V", "V2V"):
            query["video"] = _video(f"v{v:06d}-c{(int(clip[-1]) + 1) % 4}")
        target: dict[str, Any] = {"video": _video(clip)} if "V" in task[-1] else {}
        if task.endswith("I"):
            target = {"image": f"frames/{clip}/0000.jpg"}
        elif task.endswith("T"):
            target = {"text": f"answer {i}: {words}"}
        neg = f"v{rng.randrange(videos):06d}-c{rng.randrange(4)}"
        yield {
            "id": f"p{i:08d}",
            "task": task,
            "domain": "coarse",
            "video_id": f"v{v:06d}",
            "dedup_cluster": clip if rng.random() < 0.8 else None,
            "dataset": "faq" if task == "T2T" and i % 2 else None,
            "query": query,
            "target": target,
            "hard_negatives": [{"video": _video(neg)}] if "V" in task[-1] else [],
        }


def _row(p: dict[str, Any], fraction: float) -> dict[str, Any]:
    row = {c: p.get(c) for c in COLUMNS}
    row["split"] = "heldout" if is_heldout(p["video_id"], fraction) else "train"
    for c in JSON_COLUMNS:
        row[c] = json.dumps(p.get(c) or ([] if c == "hard_negatives" else {}), sort_keys=True)
    return row


def write_shards(
    store,  # noqa: ANN001
    snapshot_id: str,
    pairs: Iterable[dict[str, Any]],
    rows_per_shard: int,
    holdout_fraction: float = 0.0,
) -> SnapshotManifest:
    """Write ``pairs`` (streamed, ``ROW_GROUP`` rows at a time) as shards and the manifest, with
    the snapshot job's own writer (``shared.snapshots.ShardFiles``)."""
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="univr-shards-") as tmp:
        files, page = ShardFiles(Path(tmp), rows_per_shard), []
        for p in pairs:
            counts[p["task"]] = counts.get(p["task"], 0) + 1
            page.append(_row(p, holdout_fraction))
            if len(page) == ROW_GROUP:
                files.add(page)
                page = []
        files.add(page)
        files.close()
        shards = upload_shards(store, snapshot_id, files.files)
    manifest = SnapshotManifest(
        id=snapshot_id,
        name=snapshot_id,
        format="parquet",
        counts=counts,
        pairs=sum(counts.values()),
        shards=shards,
    )
    store.put_bytes(
        layout.manifest_key(snapshot_id),
        manifest.model_dump_json(exclude_none=True).encode(),
        "application/json",
    )
    return manifest
