"""An import's source on S3 (``s3://bucket/prefix``): every object under the prefix is copied into
a temporary folder, keeping its path below the prefix (so a dataset's relative media paths still
resolve), for the readers to read as a local folder; the folder goes when the import ends. A
prefix that names one object gives that file. An object larger than ``synth.max_file_bytes`` is
refused before anything is fetched."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shared.config import get_settings


def bucket_store(bucket: str) -> Any:
    from services.synth.sources import _bucket_store

    return _bucket_store(bucket)


@contextmanager
def source_path(uri: str) -> Iterator[Path]:
    """A local path holding the source: the path itself, or a temporary copy of an S3 prefix."""
    if not uri.startswith("s3://"):
        yield Path(uri)
        return
    bucket, _, prefix = uri[5:].partition("/")
    store = bucket_store(bucket)
    limit = get_settings().synth.max_file_bytes
    objects = list(store.list_info(prefix))
    if not objects:
        raise ValueError(f"{uri}: no objects under this prefix")
    big = [o for o in objects if o.size > limit]
    if big:
        raise ValueError(f"{uri}: {big[0].key} is {big[0].size} bytes, over {limit}")
    with tempfile.TemporaryDirectory(prefix="univr-import-s3-") as tmp:
        root = Path(tmp).resolve()
        for o in objects:
            rel = o.key[len(prefix) :].lstrip("/") or Path(o.key).name
            dest = (root / rel).resolve()
            if root not in dest.parents:
                raise ValueError(f"{uri}: object key {o.key!r} leaves the prefix")
            store.download(o.key, dest)
        single = len(objects) == 1 and objects[0].key == prefix
        yield root / Path(prefix).name if single else root
