"""What routes depend on: the process-wide services (embedder, Qdrant client), the API-key
check with its scope, and small validators for path ids and base64 bodies."""

from __future__ import annotations

import base64
import binascii
import threading
import uuid

from fastapi import HTTPException, Request

from services.api.keys import check_key
from shared.config import get_settings


class Services:
    """Lazily opened, process-wide: one embedder, one Qdrant client (local mode allows one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._embedder = None
        self._client = None

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


def require(scope: str):  # noqa: ANN201
    def dep(request: Request) -> list[str]:
        if not get_settings().api.require_keys:
            return ["admin"]
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        else:
            token = request.query_params.get("key")
        scopes = check_key(token)
        if scopes is None:
            raise HTTPException(401, "missing or invalid API key",
                                headers={"WWW-Authenticate": "Bearer"})
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
