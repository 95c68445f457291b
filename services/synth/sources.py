"""Sources of raw videos: a local directory, an S3 prefix, or a manifest (JSONL/CSV of path-or-URL
+ raw caption, the shape of WebVid / InternVid / PE-Video). Each entry becomes one job item; an
entry that cannot be used becomes an item with its rejection reason (nothing is dropped). A row
naming a URL or a YouTube id is a web item (``url_sources``), downloaded before V-SynFlow. A
manifest's rows are read (bad rows told apart) in ``manifest``; here each row becomes an item."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.synth import url_sources
from services.synth.manifest import MAX_ROW_CHARS, PATH_FIELDS, read_rows, shown

VIDEO_EXTENSIONS = set(".mp4 .mov .mkv .webm .avi .m4v .mpg .mpeg .ts .gif .flv .wmv".split())
CAPTION_FIELDS = ("caption", "raw_caption", "text", "name", "title", "human_caption")


@dataclass
class SourceItem:
    uri: str  # what the user named; also the identity of the video
    local_path: str | None  # a file this process can read (None for s3 keys or rejected entries)
    raw_caption: str = ""
    sidecar: dict[str, Any] | None = None
    reject: str | None = None  # why this entry cannot be processed
    extra: dict[str, Any] = field(default_factory=dict)


def source_kind(uri: str) -> str:
    if uri.startswith("s3://"):
        return "s3"
    p = Path(uri)
    if p.is_dir():
        return "directory"
    if p.suffix.lower() in {".jsonl", ".json", ".csv", ".tsv"}:
        return "manifest"
    from shared.errors import UserError

    what = "no such path" if not p.exists() else "not a source"
    raise UserError(
        f"{what}: {uri!r} (a directory, an s3://bucket/prefix, or a .jsonl/.csv manifest)"
    )


MAX_NAME_CHARS = 255  # a path component longer than this cannot name a file
MAX_SIDECAR_BYTES = 1024**2


def _read_sidecar(side: Path) -> tuple[dict[str, Any] | None, str | None]:
    """A sidecar's metadata, or the reason it cannot be used."""
    try:
        if side.stat().st_size > MAX_SIDECAR_BYTES:
            return None, f"sidecar {side.name} is larger than {MAX_SIDECAR_BYTES} bytes"
        data = json.loads(side.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        return None, f"sidecar {side.name} is not readable JSON ({type(exc).__name__})"
    if not isinstance(data, dict):
        return None, f"sidecar {side.name} is not a JSON object"
    return data, None


def _sidecar_for(path: Path) -> dict[str, Any] | None:
    side = path.with_suffix(".json")
    try:
        usable = side.is_file() and side != path
    except OSError:
        return None
    return _read_sidecar(side)[0] if usable else None


def _inside(root: Path, candidate: Path) -> bool:
    try:
        candidate.resolve().relative_to(root.resolve())
        return True
    except (ValueError, OSError, RuntimeError):
        return False


def _local_item(
    root: Path, name: str, caption: str = "", sidecar: dict | None = None
) -> SourceItem:
    if "\x00" in name:
        return SourceItem(
            uri=shown(name), local_path=None, raw_caption=caption, reject="invalid path (NUL byte)"
        )
    if "://" in name:  # a manifest's URL is a web item (url_sources); a file name cannot be one
        return SourceItem(
            uri=name[:MAX_ROW_CHARS],
            local_path=None,
            raw_caption=caption,
            reject="not a local path (a URL names a web video only in a manifest row)",
        )
    if any(len(part) > MAX_NAME_CHARS for part in Path(name).parts):
        return SourceItem(
            uri=str(root / name)[:1024],
            local_path=None,
            raw_caption=caption,
            reject=f"a path component is longer than {MAX_NAME_CHARS} characters",
        )
    # normalised before anything else, so 'sub/../a.mp4' and 'a.mp4' are one video
    path = Path(os.path.normpath(name if Path(name).is_absolute() else root / name))
    uri = str(path)
    if Path(name).is_absolute() or not _inside(root, path):
        return SourceItem(
            uri=uri,
            local_path=None,
            raw_caption=caption,
            reject="path escapes the source folder (absolute path, '..' or symlink out)",
        )
    try:
        if path.is_symlink() and not path.exists():
            return SourceItem(
                uri=uri, local_path=None, raw_caption=caption, reject="dangling symlink"
            )
        if not path.exists():
            return SourceItem(
                uri=uri, local_path=None, raw_caption=caption, reject="file not found"
            )
        if not path.is_file():
            return SourceItem(
                uri=uri,
                local_path=None,
                raw_caption=caption,
                reject="not a regular file (a FIFO, device or folder)",
            )
    except OSError as exc:
        return SourceItem(
            uri=uri,
            local_path=None,
            raw_caption=caption,
            reject=f"cannot read the path ({type(exc).__name__})",
        )
    return SourceItem(
        uri=uri, local_path=str(path), raw_caption=caption, sidecar=sidecar or _sidecar_for(path)
    )


def list_directory(root: Path) -> list[SourceItem]:
    items = []
    for p in sorted(root.rglob("*")):
        if (
            p.suffix.lower() in VIDEO_EXTENSIONS and not p.is_dir()
        ):  # FIFOs etc. become rejected items
            items.append(_local_item(root, str(p.relative_to(root))))
    return items


def _row_item(manifest: Path, n: int, row: Any) -> SourceItem:
    root = manifest.parent
    where = f"{manifest}#L{n}"
    if not isinstance(row, dict):
        return SourceItem(uri=where, local_path=None, reject=f"manifest row {n}: not a JSON object")
    if "_error" in row:
        return SourceItem(uri=where, local_path=None, reject=str(row["_error"])[:500])
    if url_sources.is_web_row(row):  # fetched by the download stage (synth.io_download)
        return url_sources.web_item(row, n, where)
    name = next((str(row[k]) for k in PATH_FIELDS if row.get(k)), None)
    caption = next((str(row[k]) for k in CAPTION_FIELDS if row.get(k) is not None), "")[
        :MAX_ROW_CHARS
    ]
    if not name:
        return SourceItem(
            uri=where,
            local_path=None,
            raw_caption=caption,
            reject=f"manifest row {n} names no video (fields {PATH_FIELDS})",
        )
    sidecar = None
    side_name = row.get("sidecar")
    if (
        isinstance(side_name, str)
        and side_name
        and "/" not in side_name
        and "\x00" not in side_name
    ):
        side = root / side_name
        if len(side_name) <= MAX_NAME_CHARS and side.is_file():
            sidecar, problem = _read_sidecar(side)
            if problem:
                return SourceItem(
                    uri=where,
                    local_path=None,
                    raw_caption=caption,
                    reject=f"manifest row {n}: {problem}",
                )
    return _local_item(root, name, caption, sidecar)


def list_manifest(manifest: Path) -> list[SourceItem]:
    """One item per row; a row naming a video an earlier row named becomes a rejected item."""
    items, seen = [], set()
    for n, row in enumerate(read_rows(manifest), 1):
        item = _row_item(manifest, n, row)
        if item.reject is None and item.uri in seen:
            item = SourceItem(
                uri=f"{manifest}#L{n}",
                local_path=None,
                raw_caption=item.raw_caption,
                reject=f"manifest row {n}: the same video as an earlier row ({shown(item.uri)})",
            )
        seen.add(item.uri)
        items.append(item)
    return items


def list_s3(uri: str) -> list[SourceItem]:
    """Objects under s3://bucket/prefix in the configured S3 endpoint."""
    from shared.config import get_settings
    from shared.storage import S3Store

    bucket, _, prefix = uri[5:].partition("/")
    store = (
        S3Store.from_settings(get_settings())
        if bucket == get_settings().storage.bucket
        else _bucket_store(bucket)
    )
    return [
        SourceItem(uri=f"s3://{bucket}/{k}", local_path=None, extra={"bucket": bucket, "key": k})
        for k in store.list(prefix)
        if Path(k).suffix.lower() in VIDEO_EXTENSIONS
    ]


def _bucket_store(bucket: str):  # noqa: ANN202
    from shared.config import get_settings
    from shared.storage import S3Store

    s = get_settings().model_copy(deep=True)
    s.storage.bucket = bucket
    return S3Store.from_settings(s)


def list_source(uri: str) -> list[SourceItem]:
    kind = source_kind(uri)
    if kind == "directory":
        return list_directory(Path(uri))
    if kind == "manifest":
        return list_manifest(Path(uri))
    return list_s3(uri)


def fetch_s3(item: SourceItem, dest: Path) -> Path:
    if item.extra.get("raw_key"):  # a web source's download
        from shared.storage import get_store

        return get_store().download(item.extra["raw_key"], dest)
    store = _bucket_store(item.extra["bucket"])
    return store.download(item.extra["key"], dest)
