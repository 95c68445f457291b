"""Search: embed a query of any kind (text, image, video, text+image, text+video) with the right
instruction and ask the live alias for the nearest clips."""

from __future__ import annotations

from typing import Any

from qdrant_client import QdrantClient, models

from shared.config import get_settings
from shared.model import TASK_INSTRUCTIONS, Embedder, EmbedInput


def query_kind(text: str | None, image: Any, video: Any) -> str:
    if text and image is not None:
        return "TI2V"
    if text and video is not None:
        return "TV2V"
    if image is not None:
        return "I2V"
    if video is not None:
        return "V2V"
    if text:
        return "T2V"
    raise ValueError("a query needs text, an image or a video")


def build_filter(source: str | None = None, dataset: str | None = None, kind: str | None = None,
                 min_duration: float | None = None, max_duration: float | None = None) -> models.Filter | None:
    must: list[Any] = []
    for key, value in (("source", source), ("dataset", dataset), ("kind", kind)):
        if value:
            must.append(models.FieldCondition(key=key, match=models.MatchValue(value=value)))
    if min_duration is not None or max_duration is not None:
        must.append(models.FieldCondition(key="duration_s", range=models.Range(gte=min_duration, lte=max_duration)))
    return models.Filter(must=must) if must else None


def search(embedder: Embedder, client: QdrantClient, *, text: str | None = None, image: Any = None, video: Any = None,
           top_k: int = 10, filters: models.Filter | None = None, collection: str | None = None,
           presign=None) -> list[dict[str, Any]]:  # noqa: ANN001
    kind = query_kind(text, image, video)
    vec = embedder.embed([EmbedInput(text=text, image=image, video=video, instruction=TASK_INSTRUCTIONS[kind])])[0]
    hits = client.query_points(collection or get_settings().vectors.alias, query=vec.tolist(), limit=top_k,
                               query_filter=filters, with_payload=True).points
    out = []
    for h in hits:
        p = dict(h.payload or {})
        item = {"id": str(h.id), "score": float(h.score), **p}
        if presign and p.get("object_key"):
            item["url"] = presign(p["object_key"])
        out.append(item)
    return out
