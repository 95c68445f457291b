"""Sources of raw videos: a local directory, an S3 prefix, or a manifest (JSONL/CSV of path-or-URL
+ raw caption, the shape of WebVid / InternVid / PE-Video). Each entry becomes one job item; an
entry that cannot be used becomes an item with its rejection reason (nothing is dropped)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VIDEO_EXTENSIONS = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".gif", ".flv", ".wmv"}
CAPTION_FIELDS = ("caption", "raw_caption", "text", "name", "title", "human_caption")
PATH_FIELDS = ("path", "video", "videoid", "video_path", "url", "contentUrl", "file")


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
    raise UserError(f"{what}: {uri!r} (a directory, an s3://bucket/prefix, or a .jsonl/.csv manifest)")


def _sidecar_for(path: Path) -> dict[str, Any] | None:
    side = path.with_suffix(".json")
    if side.is_file() and side != path:
        try:
            return json.loads(side.read_text())
        except (OSError, ValueError):
            return None
    return None


def _inside(root: Path, candidate: Path) -> bool:
    try:
        candidate.resolve().relative_to(root.resolve())
        return True
    except (ValueError, OSError, RuntimeError):
        return False


def _local_item(root: Path, name: str, caption: str = "", sidecar: dict | None = None) -> SourceItem:
    uri = str(root / name)
    if "\x00" in name:
        return SourceItem(uri=repr(name), local_path=None, raw_caption=caption, reject="invalid path (NUL byte)")
    if "://" in name:
        return SourceItem(uri=name, local_path=None, raw_caption=caption,
                          reject="remote URLs are not fetched by workers; mirror them to the object store first")
    path = Path(name) if Path(name).is_absolute() else root / name
    uri = str(path)
    if Path(name).is_absolute() or not _inside(root, path):
        return SourceItem(uri=uri, local_path=None, raw_caption=caption,
                          reject="path escapes the source folder (absolute path, '..' or symlink out)")
    if path.is_symlink() and not path.exists():
        return SourceItem(uri=uri, local_path=None, raw_caption=caption, reject="dangling symlink")
    if not path.is_file():
        return SourceItem(uri=uri, local_path=None, raw_caption=caption, reject="file not found")
    return SourceItem(uri=uri, local_path=str(path), raw_caption=caption, sidecar=sidecar or _sidecar_for(path))


def list_directory(root: Path) -> list[SourceItem]:
    items = []
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() in VIDEO_EXTENSIONS and (p.is_file() or p.is_symlink()):
            items.append(_local_item(root, str(p.relative_to(root))))
    return items


def _rows(manifest: Path) -> list[dict[str, Any]]:
    text = manifest.read_text(encoding="utf-8", errors="replace")
    if manifest.suffix.lower() in {".csv", ".tsv"}:
        return list(csv.DictReader(text.splitlines(), delimiter="\t" if manifest.suffix.lower() == ".tsv" else ","))
    if manifest.suffix.lower() == ".json":
        data = json.loads(text)
        return data if isinstance(data, list) else [data]
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                rows.append({"_error": f"manifest line {n}: invalid JSON ({exc.msg})", "_line": n})
    return rows


def list_manifest(manifest: Path) -> list[SourceItem]:
    root = manifest.parent
    items = []
    for n, row in enumerate(_rows(manifest), 1):
        if "_error" in row or not isinstance(row, dict):
            items.append(SourceItem(uri=f"{manifest}#L{n}", local_path=None, reject=row.get("_error", "not an object")))
            continue
        name = next((str(row[k]) for k in PATH_FIELDS if row.get(k)), None)
        caption = next((str(row[k]) for k in CAPTION_FIELDS if row.get(k) is not None), "")
        if not name:
            items.append(SourceItem(uri=f"{manifest}#L{n}", local_path=None, raw_caption=caption,
                                    reject=f"manifest row {n} names no video (fields {PATH_FIELDS})"))
            continue
        sidecar = None
        side_name = row.get("sidecar")
        if isinstance(side_name, str) and "/" not in side_name and (root / side_name).is_file():
            sidecar = json.loads((root / side_name).read_text())
        items.append(_local_item(root, name, caption, sidecar))
    return items


def list_s3(uri: str) -> list[SourceItem]:
    """Objects under s3://bucket/prefix in the configured S3 endpoint."""
    from shared.config import get_settings
    from shared.storage import S3Store

    bucket, _, prefix = uri[5:].partition("/")
    store = S3Store.from_settings(get_settings()) if bucket == get_settings().storage.bucket else _bucket_store(bucket)
    return [SourceItem(uri=f"s3://{bucket}/{k}", local_path=None, extra={"bucket": bucket, "key": k})
            for k in store.list(prefix) if Path(k).suffix.lower() in VIDEO_EXTENSIONS]


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
    store = _bucket_store(item.extra["bucket"])
    return store.download(item.extra["key"], dest)
