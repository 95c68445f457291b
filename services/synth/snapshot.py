"""Dataset snapshots: an immutable, versioned set of pairs in the object store (the trainer's
input), written as Parquet shards with a manifest naming each shard with its row count and
SHA-256 (``shared.contracts.snapshot``); pandas, Polars, DuckDB and HF ``datasets`` open the shard
folder directly. The pairs are streamed from a server-side cursor into shards of
``synth.snapshot_shard_rows`` rows, so memory stays flat however many pairs there are.

The id is the content hash of the pairs (and of the held-out split when there is one), so the same
pairs always give the same snapshot, byte for byte. Rows are checked against the ``Pair`` contract
where they are read (``shared.snapshots``), not here. A held-out split (``holdout_fraction``) holds
out every pair of a stable fraction of source videos (``is_heldout``); each row says its
``split`` and the manifest records the split's fraction and sizes.

A snapshot only references clips whose objects are stored (``clip_stored``): a pair whose query or
target clip stopped being kept is left out, as is such a hard negative, and the manifest counts
them."""

from __future__ import annotations

import hashlib
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from services.synth.mix import SYNTHESIZED, keeps, where
from services.synth.pairs import variant
from shared import layout
from shared.config import get_settings
from shared.contracts.snapshot import SnapshotManifest, Splits, is_heldout
from shared.db import init_db, session_scope, upsert
from shared.db.models import Clip, Pair, Snapshot, clip_stored
from shared.snapshots import COLUMNS, ShardFiles, upload_shards
from shared.storage import get_store

PAGE = 1000  # pairs fetched from the cursor, checked and written at a time


def _stored(ids: set[str]) -> set[str]:
    if not ids:
        return set()
    with session_scope() as s:
        return set(s.scalars(select(Clip.id).where(Clip.id.in_(sorted(ids)), clip_stored())))


def _clip_refs(side: Any) -> list[str]:
    video = side.get("video") if isinstance(side, dict) else None
    cid = video.get("clip_id") if isinstance(video, dict) else None
    return [str(cid)] if cid and not layout.is_video_ref(cid) else []


def _usable(side: Any, stored: set[str]) -> bool:
    """A side names no clip, a whole video, or a clip whose objects are stored."""
    return all(c in stored for c in _clip_refs(side))


class _Tally:
    """What the manifest says about the rows: counts by task, videos, the split, skipped refs."""

    def __init__(self, fraction: float):
        self.fraction = fraction
        self.counts: dict[str, int] = {}
        self.datasets: dict[str, dict[str, int]] = {}  # dataset → task → pairs
        self.variants: dict[str, dict[str, int]] = {}  # task → variant → pairs
        self.videos: dict[str, set[str]] = {"train": set(), "heldout": set()}
        self.splits = {"train": 0, "heldout": 0}
        self.skipped = {"pairs": 0, "hard_negatives": 0}
        self.hash = hashlib.sha256()

    def row(self, p: Any, stored: set[str]) -> dict[str, Any] | None:
        if not (_usable(p.query, stored) and _usable(p.target, stored)):
            self.skipped["pairs"] += 1
            return None
        negs = [n for n in p.hard_negatives or [] if _usable(n, stored)]
        self.skipped["hard_negatives"] += len(p.hard_negatives or []) - len(negs)
        split = "heldout" if is_heldout(p.video_id, self.fraction) else "train"
        row = {
            "id": p.id,
            "task": p.task,
            "domain": p.domain,
            "video_id": p.video_id,
            "dedup_cluster": p.dedup_cluster,
            "split": split,
            "query": _canonical(p.query),
            "target": _canonical(p.target),
            "hard_negatives": _canonical(negs),
            "dataset": p.dataset,
        }
        # the content hash: every column of the row (the split only when there is one, the
        # dataset only for an imported pair: synthesized pairs hash as before datasets existed)
        cols = [
            c for c in COLUMNS if (c != "split" or self.fraction) and (c != "dataset" or p.dataset)
        ]
        self.hash.update("\x1f".join(str(row[c] or "") for c in cols).encode() + b"\n")
        self.counts[p.task] = self.counts.get(p.task, 0) + 1
        by, v = self.variants.setdefault(p.task, {}), variant(p.task, p.meta)
        by[v] = by.get(v, 0) + 1
        tasks = self.datasets.setdefault(p.dataset or SYNTHESIZED, {})
        tasks[p.task] = tasks.get(p.task, 0) + 1
        self.splits[split] += 1
        self.videos[split].add(p.video_id)
        return row


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def create_snapshot(
    name: str,
    tasks: list[str] | None = None,
    holdout_fraction: float = 0.0,
    mix: dict[str, float] | None = None,
) -> dict[str, Any]:
    """A snapshot of the pairs (of ``tasks``; of the datasets ``mix`` weighs, ``services.synth.
    mix``), streamed into shards."""
    if not 0.0 <= holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must lie in [0, 1), not {holdout_fraction}")
    init_db()
    tally = _Tally(holdout_fraction)
    with tempfile.TemporaryDirectory(prefix="univr-snapshot-") as tmp:
        shards = ShardFiles(Path(tmp), get_settings().synth.snapshot_shard_rows)
        with session_scope() as s:
            q = select(
                Pair.id,
                Pair.task,
                Pair.domain,
                Pair.video_id,
                Pair.dedup_cluster,
                Pair.query,
                Pair.target,
                Pair.hard_negatives,
                Pair.dataset,
                Pair.meta,
            ).order_by(Pair.id)
            if tasks:
                q = q.where(Pair.task.in_(tasks))
            if mix:
                q = q.where(where(mix))
            for page in s.execute(q.execution_options(yield_per=PAGE)).partitions():
                stored = _stored(
                    {
                        c
                        for p in page
                        for side in (p.query, p.target, *(p.hard_negatives or []))
                        for c in _clip_refs(side)
                    }
                )
                page = [p for p in page if keeps(mix, p.dataset, p.id)]
                shards.add([r for r in (tally.row(p, stored) for p in page) if r is not None])
        shards.close()
        if not sum(tally.counts.values()):
            raise ValueError("no pairs to snapshot: run a synthesis job first")
        empty = sorted(set(mix or {}) - set(tally.datasets))
        if empty:
            raise ValueError(f"--mix names datasets with no pairs: {', '.join(empty)}")
        if holdout_fraction:
            tally.hash.update(f"holdout_fraction={holdout_fraction!r}".encode())
        if mix:
            tally.hash.update(f"mix={sorted(mix.items())!r}".encode())
        sid = tally.hash.hexdigest()[:16]
        return _publish(sid, name, tally, shards.files, mix)


def _publish(
    sid: str,
    name: str,
    tally: _Tally,
    files: list[tuple[Path, int]],
    mix: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Upload the shards and the manifest (never rewritten: a snapshot is immutable) and record
    the snapshot's row."""
    store, manifest_key = get_store(), layout.manifest_key(sid)
    if store.exists(manifest_key):
        manifest = SnapshotManifest.model_validate_json(store.get_bytes(manifest_key))
    else:
        shard_list = upload_shards(store, sid, files)
        manifest = SnapshotManifest(
            id=sid,
            name=name,
            created_at=datetime.now(UTC).isoformat(),
            format="parquet",
            **_counts(tally),
            videos=len(tally.videos["train"] | tally.videos["heldout"]),
            splits=Splits(
                holdout_fraction=tally.fraction,
                train=tally.splits["train"],
                heldout=tally.splits["heldout"],
                train_videos=len(tally.videos["train"]),
                heldout_videos=len(tally.videos["heldout"]),
            ),
            skipped=tally.skipped,
            datasets=_datasets(tally.datasets, mix),
            shards=shard_list,
        )
        store.put_bytes(
            manifest_key,
            manifest.model_dump_json(indent=1, exclude_none=True).encode(),
            "application/json",
        )
    with session_scope() as s:
        upsert(
            s,
            Snapshot,
            [
                {
                    "id": sid,
                    "name": manifest.name,
                    "manifest_key": manifest_key,
                    "counts": manifest.counts,
                }
            ],
            update=[],
        )
    return manifest.model_dump(exclude_none=True)


def _counts(t: _Tally) -> dict[str, Any]:  # the manifest's pair counts: by task, all, by variant
    variants = {k: dict(sorted(v.items())) for k, v in sorted(t.variants.items())}
    return {"counts": t.counts, "pairs": sum(t.counts.values()), "variants": variants}


def _datasets(
    by_dataset: dict[str, dict[str, int]], mix: dict[str, float] | None
) -> dict[str, dict[str, Any]]:
    """Per dataset: its pairs by task and, for an imported one, what its import recorded (the
    preset's hard-negative count and batch size, its source)."""
    from services.synth.importer.run import read_info

    out = {}
    for name, tasks in sorted(by_dataset.items()):
        entry: dict[str, Any] = {"pairs": sum(tasks.values()), "tasks": dict(sorted(tasks.items()))}
        if mix:
            entry["weight"] = mix[name]
        info = read_info(name) if name != SYNTHESIZED else None
        if info:
            for k in ("hard_negatives", "batch_size", "format", "preset", "path"):
                entry[k] = info.get(k)
        out[name] = entry
    return out


def list_snapshots() -> list[dict[str, Any]]:
    init_db()
    with session_scope() as s:
        return [
            {"id": r.id, "name": r.name, "counts": r.counts, "created_at": r.created_at.isoformat()}
            for r in s.scalars(select(Snapshot).order_by(Snapshot.created_at))
        ]
