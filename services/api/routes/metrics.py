"""``GET /metrics``: the API's own counters (the process-wide registry) and the platform's state
read from the database (services/api/metrics.py)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from services.api.metrics import PlatformCollector

router = APIRouter()
_platform = CollectorRegistry(auto_describe=False)
_platform.register(PlatformCollector())


@router.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest() + generate_latest(_platform), media_type=CONTENT_TYPE_LATEST)
