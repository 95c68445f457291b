"""What routes depend on: the process-wide services (embedder, Qdrant client), the API-key
check with its scope, and small validators for path ids and base64 bodies."""

from __future__ import annotations

import base64
import binascii
import hmac
import threading
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING

from fastapi import HTTPException, Request

from services.api.keys import cached_scopes, check_key
from services.api.owner import local_token
from shared.config import get_settings

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from shared.model import Embedder


class Services:
    """Lazily opened, process-wide: one embedder, one Qdrant client (local mode allows one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._embedder: Embedder | None = None
        self._client: QdrantClient | None = None

    @property
    def embedder(self):  # noqa: ANN201
        with self._lock:
            if self._embedder is None:
                from shared.model import Embedder

                self._embedder = Embedder.from_settings()
            return self._embedder

    @property
    def client(self):  # noqa: ANN201
        with self._lock:
            if self._client is None:
                from shared.vectors import get_qdrant

                self._client = get_qdrant()
            return self._client

    def reset_client(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client = None


def get_services(request: Request) -> Services:
    return request.app.state.services


class FailedAuth:
    """Failed key checks per client address in a sliding window: a client with
    ``api.auth_fail_limit`` failures within ``api.auth_fail_window_s`` gets 429 (before any hashing)
    until its oldest failure leaves the window."""

    MAX_CLIENTS = 100_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fails: dict[str, deque[float]] = {}

    def _recent(self, client: str, now: float) -> deque[float] | None:
        window = get_settings().api.auth_fail_window_s
        fails = self._fails.get(client)
        while fails and fails[0] < now - window:
            fails.popleft()
        if fails is not None and not fails:
            del self._fails[client]
            return None
        return fails

    def blocked(self, client: str) -> bool:
        with self._lock:
            fails = self._recent(client, time.monotonic())
            return fails is not None and len(fails) >= get_settings().api.auth_fail_limit

    def failed(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            fails = self._recent(client, now)
            if fails is None:
                if len(self._fails) >= self.MAX_CLIENTS:
                    self._fails.pop(next(iter(self._fails)))
                fails = self._fails[client] = deque()
            fails.append(now)


def failed_auth(request: Request) -> FailedAuth:
    """This app's failure tracker (``app.state.failed_auth``, one per app)."""
    return request.app.state.failed_auth


def request_token(request: Request) -> str | None:
    """The key of a request: ``Authorization: Bearer`` or the dashboard's session cookie (never
    the query string: URLs end up in logs)."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.cookies.get(get_settings().api.session_cookie)


def token_of(scope: dict) -> str | None:
    """``request_token`` for a raw ASGI scope (middleware)."""
    return request_token(Request(scope))


def require(scope: str):  # noqa: ANN201
    def dep(request: Request) -> list[str]:
        if not get_settings().api.require_keys:
            return ["admin"]
        client = request.client.host if request.client else "?"
        token = request_token(request)
        local = local_token()
        if token and local and hmac.compare_digest(token.encode(), local.encode()):
            return ["admin"]  # `univr search` on this host (services/api/owner.py)
        # a key verified recently passes even from a blocked address (clients behind one NAT);
        # anything else from a blocked address gets 429 before any hashing
        scopes = cached_scopes(token)
        if scopes is None and failed_auth(request).blocked(client):
            raise HTTPException(
                429,
                "too many failed key checks; try again later",
                headers={"Retry-After": str(int(get_settings().api.auth_fail_window_s))},
            )
        if scopes is None:
            scopes = check_key(token)
        if scopes is None:
            if token:  # a guess, not a missing key
                failed_auth(request).failed(client)
            raise HTTPException(
                401, "missing or invalid API key", headers={"WWW-Authenticate": "Bearer"}
            )
        if scope not in scopes and "admin" not in scopes:
            raise HTTPException(403, f"this key lacks the '{scope}' scope")
        return scopes

    return dep


def parse_uuid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise HTTPException(422, f"{what} must be a UUID") from None


def decode_b64(b64: str, what: str) -> bytes:
    try:
        return base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(422, f"{what} is not valid base64") from None
