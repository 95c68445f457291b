"""Reading a dataset snapshot from the object store, whichever way it was written: Parquet shards
(read one at a time, each checked against the SHA-256 in the manifest, in record batches) or the
single JSON-lines file of older snapshots (read line by line). Memory is bounded by one shard, not
by the snapshot. Every manifest and pair is validated against its contract
(``shared.contracts``) as it is read."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

from shared import layout
from shared.contracts.pairs import Pair
from shared.contracts.snapshot import SnapshotManifest

JSON_COLUMNS = ("query", "target", "hard_negatives")  # stored as JSON text in a shard
READ_BATCH = 1024


class SnapshotCorrupt(ValueError):
    """A shard's bytes do not match its manifest."""


def read_manifest(
    store, snapshot_id: str | None = None, key: str | None = None
) -> SnapshotManifest:  # noqa: ANN001
    key = key or layout.manifest_key(str(snapshot_id))
    return SnapshotManifest.model_validate_json(store.get_bytes(key))


def _shard_rows(store, shard) -> Iterator[dict[str, Any]]:  # noqa: ANN001
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = store.get_bytes(shard.key)
    if hashlib.sha256(data).hexdigest() != shard.sha256 or len(data) != shard.bytes:
        raise SnapshotCorrupt(f"{shard.key}: bytes differ from the manifest's checksum")
    n = 0
    for batch in pq.ParquetFile(pa.BufferReader(data)).iter_batches(batch_size=READ_BATCH):
        for row in batch.to_pylist():
            for col in JSON_COLUMNS:
                row[col] = json.loads(row[col])
            n += 1
            yield row
    if n != shard.rows:
        raise SnapshotCorrupt(f"{shard.key}: {n} rows, the manifest says {shard.rows}")


def iter_rows(store, manifest: SnapshotManifest) -> Iterator[dict[str, Any]]:  # noqa: ANN001
    """A snapshot's rows as stored (not validated), in order."""
    if manifest.shards:
        for shard in manifest.shards:
            yield from _shard_rows(store, shard)
        return
    with store.open(manifest.pairs_key) as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def iter_pairs(store, manifest: SnapshotManifest) -> Iterator[dict[str, Any]]:  # noqa: ANN001
    """A snapshot's pairs, each validated as a ``Pair``, as plain dicts."""
    for row in iter_rows(store, manifest):
        yield Pair.model_validate(row).as_dict()


def side_refs(pair: dict[str, Any]) -> Iterator[str]:
    """The clip ids and ``video:<id>`` refs a pair's sides name."""
    for side in [pair.get("query"), pair.get("target"), *(pair.get("hard_negatives") or [])]:
        video = side.get("video") if isinstance(side, dict) else None
        if isinstance(video, dict) and video.get("clip_id"):
            yield str(video["clip_id"])
        elif isinstance(video, str):
            yield video
