"""The address guard for yt-dlp (``ytdlp_fetch``): a proxy on loopback, one per download, that
yt-dlp and the ffmpeg it runs for a span send every request through (yt-dlp's ``proxy`` option,
which it hands to ffmpeg as ``http_proxy``). Each request, every redirect hop and every format or
fragment URL included (each is a new request to the proxy), names its host; the proxy checks it
like plain HTTP does (``netguard.resolve_checked``: private, loopback, link-local... refused unless
``allow_private`` / ``allow_networks``) and connects to the address it checked, so a redirect or an
extractor's URL cannot reach an address the guard refuses. A refusal answers 403 and is kept in
``refused`` (the reason the item records). ffmpeg takes the proxy from ``http_proxy`` and, like
any client of that variable, skips it for the hosts a ``no_proxy`` in the worker's environment
names: leave ``no_proxy`` unset on download workers."""

from __future__ import annotations

import select
import socket
import socketserver
import threading
from urllib.parse import urlsplit

from services.synth.netguard import Refused, Transient, resolve_checked
from shared.config import DownloadSettings

MAX_HEAD = 64 * 1024  # bytes of a request line and headers
_HOP = {"proxy-connection", "proxy-authorization", "connection", "keep-alive"}


class GuardProxy:
    """``with GuardProxy(cfg) as url:`` a proxy URL for yt-dlp's ``proxy`` option."""

    def __init__(self, cfg: DownloadSettings) -> None:
        self.cfg = cfg
        self.refused: list[str] = []
        self.hosts: list[str] = []  # every host:port asked for, in order (for tests and logs)
        guard = self

        class Handler(socketserver.StreamRequestHandler):
            rbufsize = 0  # unbuffered: nothing past the head is read before it is forwarded

            def handle(self) -> None:
                guard._handle(self.connection, self.rfile)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        host, port = self._server.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handle(self, client: socket.socket, rfile) -> None:  # noqa: ANN001
        head = _read_head(rfile)
        if not head:
            return
        method, target, version = (head[0].split(" ", 2) + ["", ""])[:3]
        if method == "CONNECT":
            u = urlsplit("//" + target)
            host, port = u.hostname or "", u.port or 443
        else:
            u = urlsplit(target)
            host, port = u.hostname or "", u.port or (443 if u.scheme == "https" else 80)
            if u.scheme not in ("http", "https") or not host:
                return _answer(client, 400, "an absolute http(s) URL is needed")
        self.hosts.append(f"{host}:{port}")
        try:
            address = resolve_checked(host, port, self.cfg)
            upstream = socket.create_connection((address, port), self.cfg.connect_timeout_s)
        except Refused as exc:
            self.refused.append(str(exc))
            return _answer(client, 403, str(exc))
        except (Transient, OSError) as exc:
            return _answer(client, 502, str(exc))
        with upstream:
            if method == "CONNECT":
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                path = (u.path or "/") + (f"?{u.query}" if u.query else "")
                headers = [h for h in head[1:] if h.split(":", 1)[0].strip().lower() not in _HOP]
                lines = [f"{method} {path} {version}", *headers, "Connection: close", "", ""]
                upstream.sendall("\r\n".join(lines).encode("latin-1"))
                if not _relay_head(upstream, client, self.cfg.read_timeout_s):
                    return
            _pipe(client, upstream, self.cfg.read_timeout_s)


def _read_head(rfile) -> list[str]:  # noqa: ANN001
    lines: list[str] = []
    size = 0
    while True:
        line = rfile.readline(MAX_HEAD)
        size += len(line)
        if not line or size > MAX_HEAD:
            return []
        text = line.decode("latin-1").rstrip("\r\n")
        if not text:
            return lines
        lines.append(text)


def _relay_head(upstream: socket.socket, client: socket.socket, timeout_s: float) -> bool:
    """The upstream answer's status line and headers to the client, saying ``Connection: close``
    (one request per connection to the proxy: a client must not send its next request, maybe to
    another host, down this one). False when the upstream sent no head in ``timeout_s``."""
    upstream.settimeout(timeout_s)
    try:
        head = _read_head(upstream.makefile("rb", buffering=0))
    except OSError:  # a timeout: the client sees the connection end
        return False
    if not head:
        return False
    keep = [h for h in head[1:] if h.split(":", 1)[0].strip().lower() not in _HOP]
    client.sendall("\r\n".join([head[0], *keep, "Connection: close", "", ""]).encode("latin-1"))
    return True


def _answer(client: socket.socket, status: int, reason: str) -> None:
    body = reason.encode("utf-8", "replace")
    words = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}[status]
    head = f"HTTP/1.1 {status} {words}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    client.sendall(head.encode() + body)


def _pipe(a: socket.socket, b: socket.socket, idle_s: float) -> None:
    """Bytes both ways between the client ``a`` and the upstream ``b`` until the upstream is done
    (one request per upstream connection) or neither speaks for ``idle_s``."""
    other = {a: b, b: a}
    open_ = [a, b]
    while open_:
        ready, _, _ = select.select(open_, [], [], idle_s)
        if not ready:
            return
        for s in ready:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if data:
                try:
                    other[s].sendall(data)
                except OSError:
                    return
                continue
            if s is b:
                return
            open_.remove(s)
            try:
                other[s].shutdown(socket.SHUT_WR)
            except OSError:
                pass
