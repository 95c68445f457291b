"""Collection naming, the live alias, and the payload schema of indexed clips."""

from __future__ import annotations

import re
import time

from qdrant_client import QdrantClient, models

PAYLOAD_INDEXES = {"video_id": models.PayloadSchemaType.KEYWORD, "source": models.PayloadSchemaType.KEYWORD,
                   "kind": models.PayloadSchemaType.KEYWORD, "dataset": models.PayloadSchemaType.KEYWORD,
                   "duration_s": models.PayloadSchemaType.FLOAT}


def collection_name(model_id: str) -> str:
    safe = re.sub(r"[^a-zA-Z0-9_-]", "-", model_id)[:60]
    return f"univr-{safe}-{time.strftime('%Y%m%d%H%M%S')}"


def live_collection(client: QdrantClient, alias: str) -> str | None:
    for a in client.get_aliases().aliases:
        if a.alias_name == alias:
            return a.collection_name
    return None
