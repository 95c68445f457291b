"""Deterministic identifiers: the same ID is the object key, the database key, the Qdrant point
ID and the idempotency key (DESIGN.md conventions)."""

from __future__ import annotations

import uuid

NAMESPACE = uuid.UUID("6f1c1a52-8d1b-4a8e-9a57-2b8d0c1e7a10")


def stable_id(*parts: object) -> str:
    """uuid5 over the parts joined by '|'."""
    return str(uuid.uuid5(NAMESPACE, "|".join(str(p) for p in parts)))


def clip_id(source_uri: str, start_ms: int, end_ms: int) -> str:
    return stable_id(source_uri, int(start_ms), int(end_ms))
