"""Qdrant access: a server URL (stack) or a local-mode folder (embedded; one process at a time)."""

from __future__ import annotations

from pathlib import Path

from qdrant_client import QdrantClient

from shared.config import Settings, get_settings


def get_qdrant(settings: Settings | None = None) -> QdrantClient:
    v = (settings or get_settings()).vectors
    if v.url:
        return QdrantClient(
            url=v.url, api_key=v.api_key.get_secret_value() if v.api_key else None, timeout=60
        )
    if v.path == ":memory:":
        return QdrantClient(location=":memory:")
    Path(v.path).mkdir(parents=True, exist_ok=True)
    return QdrantClient(path=v.path)


def is_server(client: QdrantClient) -> bool:
    """Whether the client talks to a Qdrant server (thread-safe, concurrent requests) or runs local
    mode."""
    opts = client.init_options
    return opts.get("location") != ":memory:" and opts.get("path") is None
