"""The FastAPI application: the routers of every resource, the request guards, the shared
services.

Security: every /v1 route needs an API key (``Authorization: Bearer univr_…``, or the dashboard's
HttpOnly session cookie set by ``POST /v1/session``) with the route's scope
(services/api/deps.py); request bodies are size-limited while they are read, JSON only, valid
Unicode (middleware.py); inputs are validated (4xx with a short reason that never echoes the
input, errors.py); ids are checked before they reach the database or the object store; the
access log has no query strings."""

from __future__ import annotations

from fastapi import FastAPI

from services.api import errors
from services.api.deps import FailedAuth, Services
from services.api.middleware import AuthGate, BodyCheck, BodyLimit, redact_access_log
from services.api.routes import clips, dashboard, jobs, metrics, search, session, status
from shared.db import init_db


def create_app() -> FastAPI:
    init_db()
    redact_access_log()
    app = FastAPI(
        title="univr",
        version="0.1.0",
        description="Universal video retrieval: search, jobs, dashboard.",
        default_response_class=errors.SafeJSON,
    )
    app.add_middleware(BodyCheck)
    app.add_middleware(BodyLimit)
    app.add_middleware(AuthGate)  # added last: runs first
    errors.install(app)
    app.state.services = Services()
    app.state.failed_auth = FailedAuth()
    for module in (status, metrics, search, clips, jobs, session, dashboard):
        app.include_router(module.router)
    return app
