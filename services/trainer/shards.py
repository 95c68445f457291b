"""Reading a snapshot's pairs by (shard, row) for the trainer, with memory bounded by a few row
groups, not by the snapshot.

``ShardSource.scan`` is the one streaming pass: it checks every Parquet shard against the
manifest's SHA-256, size and row count and yields each row's pair (validated against the ``Pair``
contract) with its shard and row; the caller keeps only compact columns of it
(``services.trainer.pairindex``). ``fetch`` then reads pairs on demand: the Parquet row group
holding each one is decoded (as an Arrow table) into a small LRU cache of ``cache_groups`` row
groups (``train.shard_cache``), and only the wanted rows become Python dicts.

A shard the store has on local disk is read in place; one from S3 is downloaded once, during the
scan, into a spool folder the source owns (disk, not memory). An older JSON-lines snapshot is
spooled during the scan into one local Parquet file of its lines' JSON text, so it is read the
same way. Errors name the shard: ``SnapshotCorrupt`` for bytes or rows that differ from the
manifest, ``ShardUnreadable`` for a shard that is missing or will not decode."""

from __future__ import annotations

import hashlib
import json
import tempfile
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from shared.contracts.pairs import Pair
from shared.contracts.snapshot import SnapshotManifest
from shared.snapshots import JSON_COLUMNS, SnapshotCorrupt
from shared.storage import ObjectNotFound

SPOOL_GROUP = 1000  # rows per row group of a spooled JSON-lines snapshot
JSONL_COLUMN = "json"


class ShardUnreadable(SnapshotCorrupt):
    """A shard is missing from the store or is not readable Parquet."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class ShardSource:
    """One snapshot's rows by (shard, row): ``scan`` once, then ``fetch`` any rows."""

    def __init__(self, store, manifest: SnapshotManifest, cache_groups: int = 16):  # noqa: ANN001
        self.store, self.manifest = store, manifest
        self.cache_groups = max(1, int(cache_groups))
        self.cache: OrderedDict[tuple[int, int], Any] = OrderedDict()  # (shard, group) → Table
        self.files: OrderedDict[int, Any] = OrderedDict()  # shard → open ParquetFile (its footer)
        self.loads = 0  # row groups decoded (cache misses)
        self._spool: tempfile.TemporaryDirectory[str] | None = None
        self.paths: list[Path] = []
        self.names: list[str] = []  # each shard's key, for errors
        self.starts: list[list[int]] = []  # per shard: the first row of each row group

    # -- the streaming pass -------------------------------------------------------------------
    def scan(self) -> Iterator[tuple[int, int, dict[str, Any]]]:
        """(shard, row, pair) for every row in snapshot order, each shard checked first."""
        if self.manifest.shards:
            for i, shard in enumerate(self.manifest.shards):
                path = self._local(shard.key)
                if path.stat().st_size != shard.bytes or _sha256(path) != shard.sha256:
                    raise SnapshotCorrupt(f"{shard.key}: bytes differ from the manifest's checksum")
                self._add(shard.key, path)
                n = 0
                for row in self._rows(i):
                    yield i, n, row
                    n += 1
                if n != shard.rows:
                    raise SnapshotCorrupt(f"{shard.key}: {n} rows, the manifest says {shard.rows}")
            return
        yield from self._scan_jsonl(str(self.manifest.pairs_key))

    def _local(self, key: str) -> Path:
        path = self.store.local_path(key)
        if path is not None:
            if not Path(path).is_file():
                raise ShardUnreadable(f"{key}: shard missing from the store")
            return Path(path)
        try:
            return Path(self.store.download(key, self._spool_dir() / key.replace("/", "_")))
        except ObjectNotFound as exc:
            raise ShardUnreadable(f"{key}: shard missing from the store") from exc

    def _spool_dir(self) -> Path:
        if self._spool is None:
            self._spool = tempfile.TemporaryDirectory(prefix="univr-shards-")
        return Path(self._spool.name)

    def _add(self, key: str, path: Path) -> None:
        import pyarrow.parquet as pq

        try:
            meta = pq.ParquetFile(path).metadata
        except Exception as exc:
            raise ShardUnreadable(f"{key}: not readable as Parquet ({exc})") from exc
        starts, at = [], 0
        for g in range(meta.num_row_groups):
            starts.append(at)
            at += meta.row_group(g).num_rows
        self.paths.append(path)
        self.names.append(key)
        self.starts.append(starts)

    def _rows(self, shard: int) -> Iterator[dict[str, Any]]:
        """A shard's pairs, decoded one row group at a time."""
        try:
            file = self._file(shard)
            for g in range(file.num_row_groups):
                yield from (_pair(row) for row in file.read_row_group(g).to_pylist())
        except (OSError, ValueError) as exc:
            if isinstance(exc, SnapshotCorrupt):
                raise
            raise ShardUnreadable(f"{self.names[shard]}: not readable ({exc})") from exc

    def _scan_jsonl(self, key: str) -> Iterator[tuple[int, int, dict[str, Any]]]:
        """Lines of an older JSON-lines snapshot, spooled into a local Parquet file as read."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self._spool_dir() / "pairs.parquet"
        schema = pa.schema([(JSONL_COLUMN, pa.string())])
        buf: list[str] = []
        n = 0
        try:
            fh = self.store.open(key)
        except ObjectNotFound as exc:
            raise ShardUnreadable(f"{key}: pairs file missing from the store") from exc
        with fh, pq.ParquetWriter(path, schema) as writer:
            for line in fh:
                if not line.strip():
                    continue
                text = line.decode() if isinstance(line, bytes) else line
                yield 0, n, _pair(json.loads(text), decoded=True)
                n += 1
                buf.append(text)
                if len(buf) == SPOOL_GROUP:
                    writer.write_table(pa.table({JSONL_COLUMN: buf}, schema=schema))
                    buf = []
            if buf:
                writer.write_table(pa.table({JSONL_COLUMN: buf}, schema=schema))
        self._add(key, path)

    # -- fetching by (shard, row) -------------------------------------------------------------
    def fetch(self, shards: Sequence[int], rows: Sequence[int]) -> list[dict[str, Any]]:
        """The pairs at (shards[i], rows[i]), in that order (each a fresh dict)."""
        out: list[dict[str, Any] | None] = [None] * len(rows)
        wanted: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for i, (s, r) in enumerate(zip(shards, rows, strict=True)):
            g = bisect_right(self.starts[s], r) - 1
            wanted.setdefault((s, g), []).append((i, r - self.starts[s][g]))
        for (s, g), items in wanted.items():
            table = self._group(s, g)
            for (i, _), row in zip(
                items, table.take([r for _, r in items]).to_pylist(), strict=True
            ):
                out[i] = _pair(row)
        return [p for p in out if p is not None]

    def _group(self, shard: int, group: int) -> Any:  # noqa: ANN401 (a pyarrow Table)

        key = (shard, group)
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        try:
            table = self._file(shard).read_row_group(group)
        except (OSError, ValueError) as exc:
            raise ShardUnreadable(f"{self.names[shard]}: not readable ({exc})") from exc
        self.loads += 1
        self.cache[key] = table
        while len(self.cache) > self.cache_groups:
            self.cache.popitem(last=False)
        return table

    def _file(self, shard: int) -> Any:  # noqa: ANN401 (a pyarrow ParquetFile)
        import pyarrow.parquet as pq

        if shard in self.files:
            self.files.move_to_end(shard)
            return self.files[shard]
        self.files[shard] = pq.ParquetFile(self.paths[shard])
        while len(self.files) > self.cache_groups:
            self.files.popitem(last=False)[1].close()
        return self.files[shard]

    def close(self) -> None:
        self.cache.clear()
        while self.files:
            self.files.popitem()[1].close()
        if self._spool is not None:
            self._spool.cleanup()
            self._spool = None


def _pair(row: dict[str, Any], decoded: bool = False) -> dict[str, Any]:
    """A stored row as the validated plain ``Pair`` dict (``shared.snapshots.iter_pairs``)."""
    if JSONL_COLUMN in row and len(row) == 1:
        row = json.loads(row[JSONL_COLUMN])
    elif not decoded:
        for col in JSON_COLUMNS:
            row[col] = json.loads(row[col])
    return Pair.model_validate(row).as_dict()
