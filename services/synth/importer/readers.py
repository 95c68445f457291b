"""Readers of the four source formats, each yielding records (dicts with a ``__key__``) lazily:

- ``jsonl``: ``*.jsonl`` lines, or ``*.json`` files holding a list of records or an object of
  records by id (WebQA, VisualNews);
- ``parquet``: ``*.parquet`` files, read in record batches;
- ``webdataset``: ``*.tar`` shards whose members ``<key>.<ext>`` make one sample per key (``txt``
  and ``json`` decoded, media as bytes); a member over ``synth.import_max_member_bytes`` is never
  read: its sample becomes a ``Skip`` with the reason (hostile archives);
- ``hf``: a folder written by HF ``datasets``' ``save_to_disk`` (a ``DatasetDict`` gives its
  ``train`` split, else its first).

A path is a file or a folder (its files of the format, sorted)."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMATS = ("parquet", "jsonl", "webdataset", "hf")
TEXT_EXTS = {"txt", "text", "caption", "cls"}
READ_BATCH = 1024


@dataclass
class Skip:
    """A record that cannot be read, with why."""

    key: str
    reason: str


def _files(path: Path, *suffixes: str) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ValueError(f"{path}: no such file or folder")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(suffixes))
    if not files:
        raise ValueError(f"{path}: no {'/'.join(suffixes)} files")
    return files


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    for f in _files(path, ".jsonl", ".json"):
        if f.suffix == ".json":
            data = json.loads(f.read_text())
            items = data.items() if isinstance(data, dict) else enumerate(data)
            for k, rec in items:
                yield {"__key__": f"{f.stem}/{k}", **rec}
            continue
        with f.open() as fh:
            for i, line in enumerate(fh):
                if line.strip():
                    yield {"__key__": f"{f.stem}/{i}", **json.loads(line)}


def read_parquet(path: Path) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    for f in _files(path, ".parquet"):
        i = 0
        for batch in pq.ParquetFile(f).iter_batches(batch_size=READ_BATCH):
            for rec in batch.to_pylist():
                yield {"__key__": f"{f.stem}/{i}", **rec}
                i += 1


def _member_value(ext: str, data: bytes) -> Any:
    if ext in TEXT_EXTS:
        return data.decode("utf-8", errors="replace").strip()
    if ext == "json":
        return json.loads(data)
    return data


def _split_name(name: str) -> tuple[str, str]:
    """``dir/key.ext`` → (``dir/key``, ``ext``): the key ends at the first dot of the basename."""
    head, _, base = name.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{head}/{stem}" if head else stem), ext.lower()


def read_webdataset(path: Path, max_member_bytes: int) -> Iterator[dict[str, Any] | Skip]:
    for f in _files(path, ".tar"):
        with tarfile.open(f, mode="r|*") as tar:  # streamed: members in archive order
            key, refused = None, ""
            sample: dict[str, bytes] = {}
            for m in tar:
                if not m.isfile():
                    continue
                k, ext = _split_name(m.name)
                if k != key:
                    if key is not None:
                        yield Skip(key, refused) if refused else {"__key__": key, **sample}
                    key, sample, refused = k, {}, ""
                if m.size > max_member_bytes:
                    refused = f"member {m.name} is {m.size} bytes, over {max_member_bytes}"
                    continue
                fh = tar.extractfile(m)
                if fh is not None and not refused:
                    sample[ext] = _member_value(ext, fh.read())
            if key is not None:
                yield Skip(key, refused) if refused else {"__key__": key, **sample}


def read_hf(path: Path) -> Iterator[dict[str, Any]]:
    from datasets import DatasetDict, load_from_disk

    ds = load_from_disk(str(path))
    if isinstance(ds, DatasetDict):
        ds = ds["train"] if "train" in ds else ds[next(iter(ds))]
    for i, rec in enumerate(ds):
        yield {"__key__": str(i), **rec}


def read(fmt: str, path: Path, max_member_bytes: int) -> Iterator[dict[str, Any] | Skip]:
    if fmt == "jsonl":
        return read_jsonl(path)
    if fmt == "parquet":
        return read_parquet(path)
    if fmt == "webdataset":
        return read_webdataset(path, max_member_bytes)
    if fmt == "hf":
        return read_hf(path)
    raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
