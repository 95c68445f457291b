"""Request-level guards that run before any route: the body size limit."""

from __future__ import annotations

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
        too_big = JSONResponse({"detail": f"request body larger than {limit} bytes"},
                               status_code=413)
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
