"""Request-level guards that run before any route: the body size limit, JSON-only bodies with
valid Unicode, and an access log without query strings."""

from __future__ import annotations

import asyncio
import json
import logging
import re

from fastapi.responses import JSONResponse

from shared.config import get_settings


class BodyLimit:
    """Pure ASGI: a body larger than ``api.max_upload_bytes`` gets 413, whether announced by
    content-length or streamed (chunked, no length) — counted while it is read, never buffered past
    the limit; the app then reads the buffered body as usual."""

    def __init__(self, app) -> None:  # noqa: ANN001
        self.app = app

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = get_settings().api.max_upload_bytes
        too_big = JSONResponse(
            {"detail": f"request body larger than {limit} bytes"}, status_code=413
        )
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await too_big(scope, receive, send)
            return
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await too_big(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, sent = b"".join(chunks), False

        async def replay():  # noqa: ANN202
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _has_lone_surrogate(value: object, depth: int = 0) -> bool:
    if depth > 200:
        return False  # far deeper than any request; the route refuses its shape anyway
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(
            _has_lone_surrogate(k, depth + 1) or _has_lone_surrogate(v, depth + 1)
            for k, v in value.items()
        )
    if isinstance(value, list):
        return any(_has_lone_surrogate(v, depth + 1) for v in value)
    return False


def body_problem(content_type: str, body: bytes) -> tuple[int, str] | None:
    """Why a request body cannot reach a route (status, short reason), or None: bodies are JSON
    only (415 otherwise: no multipart parsing), and JSON strings must be valid Unicode (a lone
    surrogate escape is refused here, before anything stores or echoes it)."""
    if not body:
        return None
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        return 415, "request bodies must be application/json"
    if _SURROGATE_ESCAPE.search(body):
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):
            return None  # the route's own parsing answers malformed or too deeply nested JSON
        if _has_lone_surrogate(parsed):
            return 422, "strings must be valid Unicode (lone surrogates are refused)"
    return None


class BodyCheck:
    """Pure ASGI, inside BodyLimit (the body is already buffered): refuses a body that
    ``body_problem`` refuses."""

    def __init__(self, app) -> None:  # noqa: ANN001
        self.app = app

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        message = await receive()
        body = message.get("body", b"")
        headers = dict(scope.get("headers") or [])
        problem = body_problem(headers.get(b"content-type", b"").decode("latin-1"), body)
        if problem is not None:
            await JSONResponse({"detail": problem[1]}, status_code=problem[0])(scope, receive, send)
            return
        sent = False

        async def replay():  # noqa: ANN202
            nonlocal sent
            if not sent:
                sent = True
                return message
            return await receive()

        await self.app(scope, replay, send)


class RedactQuery(logging.Filter):
    """Drops the query string from uvicorn's access log lines (a URL may carry a secret)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def redact_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactQuery) for f in access.filters):
        access.addFilter(RedactQuery())


class AuthGate:
    """Pure ASGI, before routing: a request from an address that failed too many key checks
    (``app.state.failed_auth``, services/api/deps.py) whose key is not one verified recently gets
    429 after ``api.auth_block_delay_s`` — no body parsing, no thread, no hashing — so a flood of
    wrong secrets costs the server little and a closed-loop flooder slows to one try per delay."""

    def __init__(self, app) -> None:  # noqa: ANN001
        self.app = app

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        from services.api.deps import token_of
        from services.api.keys import cached_scopes

        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            client = (scope.get("client") or ("?",))[0]
            tracker = scope["app"].state.failed_auth
            if tracker.blocked(client) and cached_scopes(token_of(scope)) is None:
                api = get_settings().api
                await asyncio.sleep(api.auth_block_delay_s)
                response = JSONResponse(
                    {"detail": "too many failed key checks; try again later"},
                    status_code=429,
                    headers={"Retry-After": str(int(api.auth_fail_window_s))},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
