"""Reading a dataset snapshot from the object store, whichever way it was written: Parquet shards
(read one at a time, each checked against the SHA-256 in the manifest, in record batches) or the
single JSON-lines file of older snapshots (read line by line). Memory is bounded by one shard, not
by the snapshot. Every manifest and pair is validated against its contract
(``shared.contracts``) as it is read."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shared import layout
from shared.contracts.pairs import Pair
from shared.contracts.snapshot import Shard, SnapshotManifest

JSON_COLUMNS = ("query", "target", "hard_negatives")  # stored as JSON text in a shard
COLUMNS = ("id", "task", "domain", "video_id", "dedup_cluster", "split", *JSON_COLUMNS, "dataset")


def shard_schema():  # noqa: ANN201
    """A shard's columns: every one a string (JSON text for ``JSON_COLUMNS``)."""
    import pyarrow as pa

    return pa.schema([(c, pa.string()) for c in COLUMNS])


class ShardFiles:
    """Rows into local Parquet files of at most ``rows_per_shard`` rows, a page at a time;
    ``files``: (path, rows) of each."""

    def __init__(self, tmp: Path, rows_per_shard: int):
        self.tmp, self.limit = tmp, rows_per_shard
        self.files: list[tuple[Path, int]] = []
        self.writer: Any = None
        self.rows = 0

    def add(self, rows: list[dict[str, Any]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        while rows:
            if self.writer is None:
                path = self.tmp / f"{len(self.files):05d}.parquet"
                self.writer = pq.ParquetWriter(path, shard_schema(), compression="zstd")
                self.rows = 0
                self.files.append((path, 0))
            take, rows = rows[: self.limit - self.rows], rows[self.limit - self.rows :]
            self.writer.write_table(pa.Table.from_pylist(take, schema=shard_schema()))
            self.rows += len(take)
            self.files[-1] = (self.files[-1][0], self.rows)
            if self.rows >= self.limit:
                self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def upload_shards(store, snapshot_id: str, files: list[tuple[Path, int]]) -> list[Shard]:  # noqa: ANN001
    """Put each local shard at its key; its manifest entry (rows, SHA-256, bytes)."""
    out = []
    for i, (path, rows) in enumerate(files):
        data = path.read_bytes()
        key = layout.shard_key(snapshot_id, i)
        store.put_file(key, path, "application/vnd.apache.parquet")
        out.append(
            Shard(key=key, rows=rows, sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
        )
    return out


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
