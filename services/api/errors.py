"""How errors leave the API: a short reason, never an echo of the input (a 31 MiB text is not
sent back, nor a lone surrogate that JSON cannot encode, nor a server path)."""

from __future__ import annotations

import json
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from shared.media import MediaError

MAX_REASON_CHARS = 200


class SafeJSON(JSONResponse):
    """JSON that always renders: text a client stored earlier (a lone surrogate, NaN) is sent
    escaped (``ensure_ascii``) and non-finite numbers as null, so reading a stored job or the
    status never fails on what someone stored."""

    def render(self, content: object) -> bytes:
        try:
            return json.dumps(
                content, ensure_ascii=True, allow_nan=False, separators=(",", ":")
            ).encode("ascii")
        except ValueError:  # NaN or Infinity somewhere
            return json.dumps(_finite(content), ensure_ascii=True, separators=(",", ":")).encode(
                "ascii"
            )


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


MAX_ERRORS = 10


def _safe(text: object) -> str:
    out = str(text)[:MAX_REASON_CHARS]
    return out.encode("utf-8", "replace").decode("utf-8")


def _loc(loc: tuple) -> list[str | int]:
    return [part if isinstance(part, int) else _safe(part)[:60] for part in loc][:8]


async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {
            "loc": _loc(tuple(e.get("loc", ()))),
            "msg": _safe(e.get("msg", "invalid")),
            "type": _safe(e.get("type", "value_error")),
        }
        for e in exc.errors()[:MAX_ERRORS]
    ]
    return JSONResponse({"detail": errors}, status_code=422)


async def media_error(_request: Request, exc: MediaError) -> JSONResponse:
    return JSONResponse({"detail": _safe(exc)}, status_code=422)


def install(app: FastAPI) -> None:
    # Starlette types a handler as taking any Exception; it calls each with the class registered
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(MediaError, media_error)  # type: ignore[arg-type]
