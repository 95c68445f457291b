"""Collection naming, the live alias, the build scope and the payload schema of indexed points.

A collection's name is a pure function of the model id (weights + adapter + preprocessing, an opaque
stable string) and the build scope, so re-running the same build finds the same collection: an
interrupted build resumes, a finished one is reused. The scope and model are also kept in the
collection's metadata, which is what a build checks before it writes into an existing collection."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from qdrant_client import QdrantClient, models

PAYLOAD_INDEXES = {
    "video_id": models.PayloadSchemaType.KEYWORD,
    "source": models.PayloadSchemaType.KEYWORD,
    "source_uri": models.PayloadSchemaType.KEYWORD,
    "kind": models.PayloadSchemaType.KEYWORD,
    "dataset": models.PayloadSchemaType.KEYWORD,
    "snapshot": models.PayloadSchemaType.KEYWORD,
    "duration_s": models.PayloadSchemaType.FLOAT,
}
READABLE_CHARS = (
    40  # of the model id kept in the name; the hash keeps names of distinct ids distinct
)


def scope(source: str | None = None, dataset: str | None = None) -> dict[str, str | None]:
    """What a build embeds: every kept clip, or those of one source (id or URI) / dataset
    (snapshot)."""
    return {"source": source or None, "dataset": dataset or None}


def collection_name(model_id: str, build_scope: dict[str, Any] | None = None) -> str:
    if not model_id:
        raise ValueError("a collection needs a model id")
    sc = build_scope or scope()
    digest = hashlib.sha256(
        repr((model_id, sc.get("source"), sc.get("dataset"))).encode()
    ).hexdigest()[:12]
    readable = (
        re.sub(r"[^a-zA-Z0-9_-]+", "-", model_id).strip("-")[:READABLE_CHARS].strip("-") or "model"
    )
    return f"univr-{readable}-{digest}"


def collection_metadata(client: QdrantClient, name: str) -> dict[str, Any]:
    return dict(client.get_collection(name).config.metadata or {})


def live_collection(client: QdrantClient, alias: str) -> str | None:
    for a in client.get_aliases().aliases:
        if a.alias_name == alias:
            return a.collection_name
    return None
