"""Plain HTTP(S) downloads of web sources (``services.synth.download``): redirects followed by
hand with each hop's address checked and the connection pinned to it (``netguard``), ``max_bytes``
(announced, then counted), connect/read timeouts and a time limit per attempt, retries with
exponential backoff (``Retry-After`` honoured), and resume of a partial file with ``Range`` (a
server answering 200 instead starts it over)."""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from services.synth.netguard import RATE, Fetched, Refused, Transient, resolve_checked
from services.synth.url_sources import check_url
from shared.config import DownloadSettings

REDIRECTS = (301, 302, 303, 307, 308)
TRANSIENT_STATUS = (408, 425, 429)


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
