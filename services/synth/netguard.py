"""What the download stage may reach and how often (``services.synth.download``): the addresses a
host resolves to are checked (SSRF: private, loopback, link-local, multicast, reserved and
unspecified addresses refused, IPv4-mapped and 6to4 forms included, unless ``allow_private`` or
``allow_networks`` allows them) and the one address a request then connects to is returned, so no
second lookup can rebind the name; requests to one host are spaced (per process). The errors the
fetchers raise: ``Refused`` (no retry helps) and ``Transient`` (a later try may succeed)."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from shared.config import DownloadSettings


class Refused(Exception):
    """A download that no retry can make succeed; the item is rejected with this reason."""


class Transient(Exception):
    """A download that may succeed later (a timeout, a cut, a 5xx)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass
class Fetched:
    path: Path
    size: int
    resumed_from: int  # bytes the last request did not fetch again (a partial file's)
    requests: int
    final_url: str


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
