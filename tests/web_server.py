"""A loopback-only HTTP server for the web-source tests: files served with Range support, and
hostile answers (slow, truncated, 404, oversized, flaky, redirects to private addresses, to a URL
the test names and in a loop). It counts the requests of each path and records the ranges asked
for."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class WebServer:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.hits: Counter[str] = Counter()
        self.ranges: list[tuple[str, str]] = []
        self.hosts: list[str] = []  # the Host header of each request
        self.bytes_sent: Counter[str] = Counter()
        self.stall_s = 3.0  # /slow/ answers: the headers, then silence this long
        self.cut_after: dict[str, int] = {}  # path -> bytes sent before the connection is cut
        self.cut_times: Counter[str] = Counter()  # path -> how many answers are cut (0: always)
        self.base = ""

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


def _handler(web: WebServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            return

        def _head(self, code: int, headers: dict[str, str]) -> None:
            self.send_response(code)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            path = self.path.split("?")[0]
            web.hits[path] += 1
            web.hosts.append(self.headers.get("Host", ""))
            rng = self.headers.get("Range")
            if rng:
                web.ranges.append((path, rng))
            if path.startswith("/redirect-private"):
                return self._head(302, {"Location": "http://169.254.169.254/latest/meta-data/"})
            if path.startswith("/redirect-ten"):
                return self._head(301, {"Location": "http://10.1.2.3/x.mp4"})
            if path.startswith("/redirect-loop"):
                return self._head(302, {"Location": path, "Content-Length": "0"})
            if path == "/redirect-to":  # /redirect-to?to=URL: anywhere the test names
                to = parse_qs(urlsplit(self.path).query)["to"][0]
                return self._head(302, {"Location": to, "Content-Length": "0"})
            if path.startswith("/redirect-good/"):
                to = "/files/" + path.removeprefix("/redirect-good/")
                return self._head(302, {"Location": to, "Content-Length": "0"})
            if path.startswith("/huge-announced"):
                self._head(200, {"Content-Length": str(10**9), "Content-Type": "video/mp4"})
                self.wfile.write(b"\0" * 1024)
                self.close_connection = True
                return None
            if path.startswith("/huge-chunked"):
                self._head(200, {"Content-Type": "video/mp4", "Connection": "close"})
                try:
                    for _ in range(64):
                        self.wfile.write(b"\0" * 65536)
                except OSError:
                    pass
                self.close_connection = True
                return None
            if path.startswith("/busy"):
                if web.hits[path] == 1:
                    return self._head(503, {"Retry-After": "0", "Content-Length": "0"})
                path = "/files/" + path.removeprefix("/busy/")
            body = web.files.get(path.removeprefix("/slow").removeprefix("/cut"))
            if body is None:
                return self._head(404, {"Content-Length": "0"})
            if path.startswith("/slow"):
                self._head(200, {"Content-Length": str(len(body))})
                time.sleep(web.stall_s)
                self.close_connection = True
                return None
            start = 0
            if rng and rng.startswith("bytes=") and rng.endswith("-"):
                start = int(rng[6:-1])
            part = body[start:]
            code, headers = (206, {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"})
            if not start:
                code, headers = 200, {}
            self._head(
                code,
                {**headers, "Content-Length": str(len(part)), "Content-Type": "video/mp4"},
            )
            cut = web.cut_after.get(path)
            limit = web.cut_times.get(path, 0)
            if cut is not None and (limit == 0 or web.hits[path] <= limit):
                web.bytes_sent[path] += min(cut, len(part))  # counted first: no race with
                self.wfile.write(part[:cut])  # a client that has read it all
                self.wfile.flush()
                self.close_connection = True
                return None
            web.bytes_sent[path] += len(part)
            self.wfile.write(part)
            return None

    return Handler


class _Quiet(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:  # noqa: ANN001
        return  # a client that hangs up early (a refused size, a span) is no error here


@contextmanager
def web_server(host: str = "127.0.0.1") -> Iterator[WebServer]:
    """The server on ``host`` (a loopback address) and a free port, stopped on exit."""
    web = WebServer()
    httpd = _Quiet((host, 0), _handler(web))
    httpd.daemon_threads = True
    web.base = f"http://{host}:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield web
    finally:
        httpd.shutdown()
        httpd.server_close()
