"""The download stage of web sources (task ``synth.io_download``, io queue): one web item's video
fetched into the store (``layout.raw_video_key``), after which V-SynFlow's media step reads it.

- **Addresses** (SSRF): a host is resolved once per request and every address it resolves to must
  be public (not private, loopback, link-local, multicast, reserved or unspecified, IPv4-mapped
  forms included) unless ``allow_private`` or ``allow_networks`` allows it; the connection then
  goes to that checked address (the URL's host stays in ``Host`` and in TLS's SNI and certificate
  check), so a second lookup cannot rebind it. Redirects are followed by hand, each hop checked.
- **Limits**: ``max_bytes`` (the announced length, then the bytes counted), connect and read
  timeouts, a time limit per attempt (``deadline_s``), ``max_redirects``.
- **Retries**: timeouts, cuts, 408/425/429 and 5xx are retried ``retries`` times with exponential
  backoff (a ``Retry-After`` is honoured up to ``backoff_max_s``); what is left is raised and the
  task retries it as any error. A refusal (an address, a 4xx, a size) rejects the item at once.
- **Resume**: an unfinished file waits in ``partial_dir`` and the next try asks for the rest with
  ``Range`` (a server answering 200 instead starts it over); a finished file is in the store and is
  never fetched again.
- **Rate**: requests to one host are spaced by ``per_host_interval_s`` (per worker process).
- **Platforms**: YouTube ids and URLs of ``platform_hosts`` go through yt-dlp, spans with
  ``download_ranges``; its first host is checked like any other (its own redirects are not).
"""

from __future__ import annotations

import ipaddress
import logging
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from services.synth.errors import Rejected
from services.synth.sources import SourceItem
from services.synth.url_sources import check_url
from shared import layout
from shared.config import DownloadSettings, get_settings
from shared.storage import get_store

log = logging.getLogger(__name__)
REDIRECTS = (301, 302, 303, 307, 308)
TRANSIENT_STATUS = (408, 425, 429)


class Refused(Exception):
    """A download that no retry can make succeed; the item is rejected with this reason."""


class DownloadFailed(RuntimeError):
    """What is left after the retries of one attempt; the task retries it, then fails the item."""


class Transient(Exception):
    """A download that may succeed later (a timeout, a cut, a 5xx)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


# --- addresses ------------------------------------------------------------------------------


def _private(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(ip, "ipv4_mapped", None) or getattr(ip, "sixtofour", None)
    if mapped is not None:
        return _private(mapped)
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def address_allowed(address: str, cfg: DownloadSettings) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if cfg.allow_private or not _private(ip):
        return True
    return any(ip in ipaddress.ip_network(net, strict=False) for net in cfg.allow_networks)


def resolve_checked(host: str, port: int, cfg: DownloadSettings) -> str:
    """The one address a request to ``host`` connects to; every address the host resolves to must
    be allowed (a name that also points inside is refused as a whole)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Transient(f"cannot resolve {host!r} ({exc})") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    bad = [a for a in addresses if not address_allowed(a, cfg)]
    if bad or not addresses:
        raise Refused(
            f"{host!r} resolves to a private, loopback or link-local address ({bad[0]}); "
            "refused (synth.download.allow_private / allow_networks)"
            if bad
            else f"{host!r} resolves to no address"
        )
    return addresses[0]


# --- rate -----------------------------------------------------------------------------------


class HostRate:
    """Requests to one host spaced by ``interval`` seconds (within this process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}

    def wait(self, host: str, interval: float) -> None:
        with self._lock:
            now = time.monotonic()
            at = max(now, self._next.get(host, 0.0))
            self._next[host] = at + interval
        if at > now:
            time.sleep(at - now)


RATE = HostRate()


# --- plain HTTP -----------------------------------------------------------------------------


@dataclass
class Fetched:
    path: Path
    size: int
    resumed_from: int  # bytes the last request did not fetch again (a partial file's)
    requests: int
    final_url: str


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _pinned(url: str, cfg: DownloadSettings) -> tuple[httpx.URL, str, dict[str, Any]]:
    """The URL to the checked address, the Host header and the request's extensions."""
    u = httpx.URL(url)
    port = u.port or (443 if u.scheme == "https" else 80)
    ip = resolve_checked(u.host, port, cfg)
    host_header = u.netloc.decode("ascii")
    ext: dict[str, Any] = {"sni_hostname": u.host} if u.scheme == "https" else {}
    return u.copy_with(host=ip), host_header, ext


def _open(
    client: httpx.Client, url: str, offset: int, cfg: DownloadSettings
) -> tuple[httpx.Response, str]:
    """The first non-redirect answer to ``url`` (each hop's address checked) and its URL."""
    current = url
    for hop in range(cfg.max_redirects + 1):
        try:
            target, host_header, ext = _pinned(current, cfg)
        except Refused as exc:
            raise Refused(f"redirect to {current}: {exc}" if hop else str(exc)) from None
        RATE.wait(httpx.URL(current).host, cfg.per_host_interval_s)
        headers = {
            "Host": host_header,
            "User-Agent": cfg.user_agent,
            "Accept-Encoding": "identity",
        }
        if offset:
            headers["Range"] = f"bytes={offset}-"
        request = client.build_request("GET", target, headers=headers, extensions=ext)
        resp = client.send(request, stream=True)
        if resp.status_code not in REDIRECTS:
            return resp, current
        resp.close()
        location = resp.headers.get("location")
        if not location:
            raise Refused(f"HTTP {resp.status_code} without a Location")
        current, problem = check_url(urljoin(current, location))
        if problem:
            raise Refused(f"redirect to {current}: {problem}")
    raise Refused(f"more than {cfg.max_redirects} redirects")


def _status(resp: httpx.Response) -> None:
    code = resp.status_code
    if code in TRANSIENT_STATUS or code >= 500:
        raise Transient(f"HTTP {code} {resp.reason_phrase}".strip(), _retry_after(resp))
    if code >= 400:
        raise Refused(f"HTTP {code} {resp.reason_phrase}".strip())
    if code not in (200, 206):
        raise Refused(f"unexpected HTTP {code}")


def _start(resp: httpx.Response, offset: int, part: Path) -> int:
    """Where this answer's body starts in the file: ``offset`` for a matching 206, else 0."""
    if resp.status_code == 206 and offset:
        unit, _, rest = resp.headers.get("content-range", "").partition(" ")
        first = rest.split("-", 1)[0]
        if unit == "bytes" and first.isdigit() and int(first) == offset:
            return offset
    part.write_bytes(b"")
    return 0


def _body(
    resp: httpx.Response, part: Path, start: int, cfg: DownloadSettings, deadline: float
) -> int:
    length = resp.headers.get("content-length")
    expected = start + int(length) if length and length.isdigit() else None
    if expected is not None and expected > cfg.max_bytes:
        part.unlink(missing_ok=True)
        raise Refused(f"larger than {cfg.max_bytes} bytes ({expected} announced)")
    size = start
    with part.open("ab") as fh:
        for chunk in resp.iter_raw():
            size += len(chunk)
            if size > cfg.max_bytes:
                fh.close()
                part.unlink(missing_ok=True)
                raise Refused(f"larger than {cfg.max_bytes} bytes (counted)")
            fh.write(chunk)
            if time.monotonic() > deadline:
                raise Transient(f"time limit of {cfg.deadline_s:g} s (partial file kept)")
    if expected is not None and size < expected:
        raise Transient(f"truncated answer ({size} of {expected} bytes)")
    return size


def _once(
    client: httpx.Client, url: str, part: Path, cfg: DownloadSettings, deadline: float
) -> Fetched:
    offset = part.stat().st_size if part.exists() else 0
    try:
        resp, final = _open(client, url, offset, cfg)
        try:
            if resp.status_code == 416 and offset:
                part.unlink()
                raise Transient("range not satisfiable (the partial file is dropped)")
            _status(resp)
            start = _start(resp, offset, part)
            size = _body(resp, part, start, cfg, deadline)
        finally:
            resp.close()
    except httpx.RemoteProtocolError as exc:
        if "complete message body" not in str(exc):
            raise Transient(f"protocol error ({str(exc)[:120]})") from None
        have = part.stat().st_size if part.exists() else 0
        raise Transient(f"truncated answer (cut after {have} bytes; the rest resumes)") from None
    except httpx.TimeoutException as exc:
        raise Transient(f"timed out ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        raise Transient(f"connection failed ({type(exc).__name__}: {str(exc)[:120]})") from None
    return Fetched(part, size, start, 0, final)


def fetch_http(
    url: str,
    part: Path,
    cfg: DownloadSettings,
    sleep: Callable[[float], None] = time.sleep,
) -> Fetched:
    """``url`` into the file ``part`` (resumed where it ends), with ``cfg``'s retries."""
    timeout = httpx.Timeout(cfg.read_timeout_s, connect=cfg.connect_timeout_s)
    deadline = time.monotonic() + cfg.deadline_s
    last: Transient | None = None
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for attempt in range(cfg.retries + 1):
            try:
                got = _once(client, url, part, cfg, deadline)
                got.requests = attempt + 1
                return got
            except Transient as exc:
                last = exc
                if attempt == cfg.retries or time.monotonic() > deadline:
                    break
                wait = min(cfg.backoff_s * 2**attempt, cfg.backoff_max_s)
                sleep(min(exc.retry_after, cfg.backoff_max_s) if exc.retry_after else wait)
    raise Transient(f"{last} (after {cfg.retries + 1} tries)")


# --- platforms (yt-dlp) ---------------------------------------------------------------------


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
    try:
        with yt_dlp.YoutubeDL(opts) as ydl:
            ydl.extract_info(url, download=True)
    except DownloadError as exc:
        raise _ytdlp_error(str(exc)) from None
    files = [p for p in work.glob("ytdlp.*") if not p.name.endswith((".part", ".ytdl"))]
    if not files:
        raise Refused(f"yt-dlp wrote no file (larger than {cfg.max_bytes} bytes, or no format)")
    path = max(files, key=lambda p: p.stat().st_size)
    return Fetched(path, path.stat().st_size, 0, 1, url)


# --- the stage ------------------------------------------------------------------------------


def partial_root(cfg: DownloadSettings) -> Path:
    if cfg.partial_dir:
        return Path(cfg.partial_dir).expanduser()
    return Path(get_settings().home).expanduser().resolve() / "downloads"


def download_stage(item: SourceItem, video_id: str) -> dict[str, Any]:
    """The web item's file into the store (kept there: a restart never fetches it again)."""
    cfg = get_settings().synth.download
    url = item.extra.get("url")
    if not url:
        raise Rejected("not a web source (no URL)")
    store = get_store()
    key = layout.raw_video_key(video_id, str(item.extra.get("ext", ".mp4")))
    if store.exists(key):
        return {"raw_key": key, "download": "already in the store"}
    work = partial_root(cfg) / video_id
    work.mkdir(parents=True, exist_ok=True)
    try:
        if item.extra.get("fetch") == "ytdlp" or is_platform(url, cfg):
            got = fetch_ytdlp(url, item.extra.get("span"), work, cfg)
        else:
            got = fetch_http(url, work / "source.part", cfg)
    except Refused as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise Rejected(f"download refused: {exc}") from None
    except Transient as exc:
        raise DownloadFailed(str(exc)) from None
    store.put_file(key, got.path)
    shutil.rmtree(work, ignore_errors=True)
    return {
        "raw_key": key,
        "download": f"{got.size} bytes in {got.requests} request(s)"
        + (f", resumed at {got.resumed_from}" if got.resumed_from else ""),
    }
