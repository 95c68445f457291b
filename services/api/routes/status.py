"""``GET /healthz`` and ``GET /v1/status`` (what the dashboard shows)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import select

from services.api.deps import require
from shared.db import session_scope

router = APIRouter()


@router.get("/healthz")
def healthz() -> dict[str, Any]:
    with session_scope() as s:
        s.execute(select(1))
    return {"status": "ok"}


@router.get("/v1/status")
def status_route(scopes: list[str] = Depends(require("search"))) -> dict[str, Any]:
    """Job sources and error texts only for keys that may submit jobs (jobs, admin)."""
    from services.api.status import platform_status
    from shared.queue import queue_depths

    return platform_status(queue_depths(), detail=bool({"jobs", "admin"} & set(scopes)))
