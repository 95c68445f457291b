"""Web rows of a source manifest: a row naming a URL (WebVid-style CSV with ``contentUrl``, or a
``url``/``path`` column holding one) or a YouTube id with a span (InternVid-style ``YoutubeID``,
``Start_timestamp``, ``End_timestamp``) becomes one item that the download stage
(``services.synth.download``, task ``synth.io_download``) fetches into the store before V-SynFlow.

Nothing is fetched here: a row is only parsed and checked for what can be known without the
network (scheme, host, length, credentials, id and span); a row that fails is a rejected item with
its reason. Whether the host's addresses may be reached is decided at download time, on every hop.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:  # sources imports this module
    from services.synth.sources import SourceItem

URL_FIELDS = ("contentUrl", "content_url", "url", "video_url", "path", "video", "file")
ID_FIELDS = ("YoutubeID", "youtube_id", "yt_id", "youtubeid")
START_FIELDS = ("Start_timestamp", "start_timestamp", "start", "start_s")
END_FIELDS = ("End_timestamp", "end_timestamp", "end", "end_s")
CAPTION_FIELDS = ("caption", "Caption", "raw_caption", "text", "name", "title", "human_caption")
SCHEMES = ("http", "https")
MAX_URL_CHARS = 2048
MAX_CAPTION_CHARS = 64 * 1024
YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
TIMESTAMP = re.compile(r"^(?:(\d{1,3}):)?(?:(\d{1,2}):)?(\d{1,5}(?:\.\d+)?)$")
SHOWN_CHARS = 120


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


def _first(row: dict[str, Any], fields: tuple[str, ...]) -> Any:
    return next((row[k] for k in fields if row.get(k) not in (None, "")), None)


def is_web_row(row: dict[str, Any]) -> bool:
    """Whether a manifest row names a web video (a URL in a video column, or a YouTube id)."""
    if _first(row, ID_FIELDS) is not None:
        return True
    value = _first(row, URL_FIELDS)
    return isinstance(value, str) and "://" in value


def seconds(value: Any) -> float:
    """A span bound: seconds (``12.5``) or a timestamp (``00:07:33.689``, ``7:33``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        out = float(value)
    else:
        m = TIMESTAMP.match(str(value).strip())
        if not m:
            raise ValueError(f"not a time: {_shown(value)}")
        parts = [p for p in m.groups() if p is not None]
        out = 0.0
        for p in parts:
            out = out * 60 + float(p)
    if not 0 <= out < 10**7:
        raise ValueError(f"time out of range: {_shown(value)}")
    return out


def check_url(url: str) -> tuple[str, str | None]:
    """The URL as fetched (its fragment dropped) and why it cannot be, if so."""
    if len(url) > MAX_URL_CHARS:
        return url[:SHOWN_CHARS], f"URL longer than {MAX_URL_CHARS} characters"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return _shown(url), "URL holds whitespace or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a bad port
    except ValueError as exc:
        return url, f"malformed URL ({exc})"
    del port
    if parts.scheme.lower() not in SCHEMES:
        return url, f"unsupported URL scheme {parts.scheme!r} (http or https only)"
    if not parts.hostname:
        return url, "URL names no host"
    if parts.username is not None or parts.password is not None:
        bare = parts._replace(netloc=parts.netloc.rpartition("@")[2], query="", fragment="")
        return urlunsplit(bare), "URL carries credentials (user:password@); they are not stored"
    return urlunsplit(parts._replace(fragment="")), None


def _span(row: dict[str, Any]) -> tuple[list[float] | None, str | None]:
    start, end = _first(row, START_FIELDS), _first(row, END_FIELDS)
    if start is None and end is None:
        return None, None
    try:
        lo = seconds(start) if start is not None else 0.0
        hi = seconds(end) if end is not None else None
    except ValueError as exc:
        return None, f"bad span ({exc})"
    if hi is None:
        return None, "a span needs its end"
    if hi <= lo:
        return None, f"empty span ({lo:g} s to {hi:g} s)"
    return [round(lo, 3), round(hi, 3)], None


def _extension(url: str) -> str:
    suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
    return suffix if 1 < len(suffix) <= 6 and suffix[1:].isalnum() else ".mp4"


def web_item(row: dict[str, Any], n: int, where: str) -> SourceItem:
    """The item of a web row (``is_web_row``); ``where`` names the row in rejections."""
    from services.synth.sources import SourceItem

    caption = str(_first(row, CAPTION_FIELDS) or "")[:MAX_CAPTION_CHARS]
    span, bad_span = _span(row)
    yt = _first(row, ID_FIELDS)
    if yt is not None:
        if not YOUTUBE_ID.match(str(yt)):
            return _rejected(where, caption, f"manifest row {n}: not a YouTube id: {_shown(yt)}")
        url, fetch = f"https://www.youtube.com/watch?v={yt}", "ytdlp"
    else:
        url, problem = check_url(str(_first(row, URL_FIELDS)))
        if problem:
            return _rejected(url, caption, f"manifest row {n}: {problem}")
        fetch = "http"
    if bad_span:
        return _rejected(url, caption, f"manifest row {n}: {bad_span}")
    uri = f"{url}#t={span[0]:g},{span[1]:g}" if span else url  # a span is its own video
    extra: dict[str, Any] = {"url": url, "fetch": fetch, "ext": _extension(url)}
    if span:
        extra["span"] = span
    return SourceItem(uri=uri, local_path=None, raw_caption=caption, extra=extra)


def _rejected(uri: str, caption: str, reason: str) -> SourceItem:
    from services.synth.sources import SourceItem

    return SourceItem(uri=uri, local_path=None, raw_caption=caption, reject=reason[:500])
