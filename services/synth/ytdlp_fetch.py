"""Platform videos (YouTube ids, URLs of ``synth.download.platform_hosts``) through yt-dlp for the
download stage (``services.synth.download``): a span becomes yt-dlp's download range (cut by the
pinned ffmpeg), ``max_bytes`` its size limit, its ``.part`` files resume in the work folder. The
first host is checked like any other (``netguard``), then every request yt-dlp and its ffmpeg
make (redirect hops, format and fragment URLs) goes through the address guard's proxy
(``ytdlp_guard``): an address plain HTTP may not reach, yt-dlp may not either."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from services.synth.netguard import RATE, Fetched, Refused, Transient, resolve_checked
from services.synth.ytdlp_guard import GuardProxy
from shared.config import DownloadSettings

log = logging.getLogger(__name__)


def is_platform(url: str, cfg: DownloadSettings) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return any(host == h or host.endswith("." + h) for h in cfg.platform_hosts)


def _ytdlp_error(message: str) -> Exception:
    text = " ".join(message.replace("ERROR:", "").split())[:300]
    transient = ("timed out", "Connection", "HTTP Error 5", "HTTP Error 429", "Temporary")
    return Transient(f"yt-dlp: {text}") if any(t in text for t in transient) else Refused(text)


class _YtdlpLog:
    """yt-dlp's messages into this module's log (its errors come back as exceptions)."""

    def debug(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    info = debug

    def warning(self, msg: str) -> None:
        log.info("yt-dlp: %s", msg)

    error = warning


def fetch_ytdlp(url: str, span: list[float] | None, work: Path, cfg: DownloadSettings) -> Fetched:
    """A platform video (its span only, when given) with yt-dlp into ``work`` (resumed there)."""
    import yt_dlp
    from yt_dlp.utils import DownloadError, download_range_func

    from shared.media import ffmpeg_exe

    u = urlsplit(url)
    resolve_checked(u.hostname or "", u.port or 443, cfg)
    RATE.wait(u.hostname or "", cfg.per_host_interval_s)
    opts: dict[str, Any] = {
        "outtmpl": str(work / "ytdlp.%(ext)s"),
        "format": cfg.ytdlp_format,
        "noplaylist": True,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "socket_timeout": cfg.read_timeout_s,
        "retries": cfg.retries,
        "max_filesize": cfg.max_bytes,
        "continuedl": True,
        "ffmpeg_location": ffmpeg_exe(),
        "http_headers": {"User-Agent": cfg.user_agent},
        "logger": _YtdlpLog(),
    }
    if span:
        opts["download_ranges"] = download_range_func(None, [(span[0], span[1])])
    guard = GuardProxy(cfg)
    try:
        with guard as proxy, yt_dlp.YoutubeDL({**opts, "proxy": proxy}) as ydl:
            ydl.extract_info(url, download=True)
    except DownloadError as exc:
        if guard.refused:  # the guard's reason, not yt-dlp's "403 Forbidden" from the proxy
            raise Refused(f"yt-dlp: {guard.refused[0]}") from None
        raise _ytdlp_error(str(exc)) from None
    if guard.refused:  # a refused request yt-dlp got over (another format): still a refusal
        raise Refused(f"yt-dlp: {guard.refused[0]}")
    files = [p for p in work.glob("ytdlp.*") if not p.name.endswith((".part", ".ytdl"))]
    if not files:
        raise Refused(f"yt-dlp wrote no file (larger than {cfg.max_bytes} bytes, or no format)")
    path = max(files, key=lambda p: p.stat().st_size)
    return Fetched(path, path.stat().st_size, 0, 1, url)
