"""The FastAPI application: the routers of every resource, the body limit, the shared services.

Security: every /v1 route needs an API key (``Authorization: Bearer univr_…`` or ``?key=`` for
images in the dashboard) with the route's scope (services/api/deps.py); request bodies are
size-limited while they are read; inputs are validated (4xx with a reason, never 5xx for bad
input); ids are checked before they reach the database or the object store."""

from __future__ import annotations

from fastapi import FastAPI

from services.api.deps import Services
from services.api.middleware import BodyLimit
from services.api.routes import clips, dashboard, jobs, metrics, search, status
from shared.db import init_db


def create_app() -> FastAPI:
    init_db()
    app = FastAPI(title="univr", version="0.1.0",
                  description="Universal video retrieval: search, jobs, dashboard.")
    app.add_middleware(BodyLimit)
    app.state.services = Services()
    for module in (status, metrics, search, clips, jobs, dashboard):
        app.include_router(module.router)
    return app
