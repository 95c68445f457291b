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


def _any_of(keys: tuple[str, ...], value: str) -> models.Filter:
    return models.Filter(should=[models.FieldCondition(key=k, match=models.MatchValue(value=value)) for k in keys])


def build_filter(source: str | None = None, dataset: str | None = None, kind: str | None = None,
                 min_duration: float | None = None, max_duration: float | None = None) -> models.Filter | None:
    """Source: its id or URI; dataset: a snapshot's name or id; duration in seconds, bounds included."""
    if min_duration is not None and max_duration is not None and min_duration > max_duration:
        raise ValueError(f"min_duration {min_duration} is above max_duration {max_duration}")
    must: list[Any] = []
    if source:
        must.append(_any_of(("source", "source_uri"), source))
    if dataset:
        must.append(_any_of(("dataset", "snapshot"), dataset))
    if kind:
        must.append(models.FieldCondition(key="kind", match=models.MatchValue(value=kind)))
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
            item["url"] = presign(p["object_key"])  # keys come from the index, never from the request
        out.append(item)
    return out
