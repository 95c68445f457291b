"""Reading a source manifest's rows (JSONL, JSON, CSV or TSV; the shape of WebVid / InternVid /
PE-Video): one row at a time, each a dict of its fields, or ``{"_error": reason}`` for a row that
cannot be parsed (too long, invalid JSON or CSV), so the row becomes a rejected item and reading
goes on. A manifest that cannot be read as a whole raises ``ManifestError``. What a row names (a
local file, a URL, a YouTube id) is decided by ``services.synth.sources``."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from services.synth import url_sources

PATH_FIELDS = ("path", "video", "videoid", "video_path", "url", "contentUrl", "file")
MAX_ROW_CHARS = 64 * 1024  # a manifest row (a line, a CSV record) longer than this is rejected
SHOWN_CHARS = 120  # how much of a bad value a rejection reason quotes


def shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


class ManifestError(ValueError):
    """A manifest that cannot be read as a whole (the job fails with this reason)."""


def _bad(n: int, reason: str) -> dict[str, Any]:
    return {"_error": f"manifest row {n}: {reason}"}


def _csv_rows(text: str, delimiter: str) -> Iterator[dict[str, Any]]:
    """Records one at a time (a quoted caption may span lines); a record the csv module refuses
    (e.g. a field over its 131,072-character limit) is a bad row and reading goes on after it."""
    reader = csv.reader(iter(text.splitlines()), delimiter=delimiter)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise ManifestError(f"the CSV header cannot be parsed ({exc})") from None
    if header is None:
        return
    if not set(header) & {*PATH_FIELDS, *url_sources.URL_FIELDS, *url_sources.ID_FIELDS}:
        raise ManifestError(
            f"the CSV manifest has no header naming a video column (one of "
            f"{', '.join(PATH_FIELDS)}); its first line is {shown(delimiter.join(header))}"
        )
    while True:
        n = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield _bad(n, f"not valid CSV ({str(exc)[:100]})")
            continue
        if not any(v.strip() for v in values):
            continue
        if sum(len(v) for v in values) > MAX_ROW_CHARS:
            yield _bad(n, f"longer than {MAX_ROW_CHARS} characters")
            continue
        yield dict(zip(header, values, strict=False))


def _jsonl_rows(text: str) -> Iterator[Any]:
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if len(line) > MAX_ROW_CHARS:
            yield _bad(n, f"longer than {MAX_ROW_CHARS} characters")
            continue
        try:
            yield json.loads(line)
        except (ValueError, RecursionError) as exc:
            yield _bad(n, f"invalid JSON ({getattr(exc, 'msg', type(exc).__name__)})")


def read_rows(manifest: Path) -> Iterator[Any]:
    """The manifest's rows, one at a time; a row that cannot be parsed is ``{"_error": reason}``.
    A byte-order mark is skipped; a manifest that cannot be read as a whole raises ManifestError."""
    try:
        text = manifest.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise ManifestError(f"cannot read the manifest ({type(exc).__name__})") from None
    suffix = manifest.suffix.lower()
    if suffix in {".csv", ".tsv"}:
        yield from _csv_rows(text, "\t" if suffix == ".tsv" else ",")
        return
    if suffix == ".json":
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise ManifestError("the .json manifest is not valid JSON") from None
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list):
            raise ManifestError("the .json manifest must be an object or a list of objects")
        yield from data
        return
    yield from _jsonl_rows(text)
