"""Search: embed a query of any kind (text, image, video, text+image, text+video) with the right
instruction and ask the live alias for the nearest clips."""

from __future__ import annotations

import time
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
    return models.Filter(
        should=[models.FieldCondition(key=k, match=models.MatchValue(value=value)) for k in keys]
    )


def build_filter(
    source: str | None = None,
    dataset: str | None = None,
    kind: str | None = None,
    min_duration: float | None = None,
    max_duration: float | None = None,
) -> models.Filter | None:
    """Source: its id or URI; dataset: a snapshot's name or id; duration in seconds, bounds
    included."""
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
        must.append(
            models.FieldCondition(
                key="duration_s", range=models.Range(gte=min_duration, lte=max_duration)
            )
        )
    return models.Filter(must=must) if must else None


def search(
    embedder: Embedder,
    client: QdrantClient,
    *,
    text: str | None = None,
    image: Any = None,
    video: Any = None,
    top_k: int = 10,
    filters: models.Filter | None = None,
    collection: str | None = None,
    presign=None,
    timings=None,
) -> list[dict[str, Any]]:  # noqa: ANN001
    """``timings``: a Prometheus histogram with a ``stage`` label (embed, vector_search)."""
    kind = query_kind(text, image, video)
    t0 = time.perf_counter()
    vec = embedder.embed(
        [EmbedInput(text=text, image=image, video=video, instruction=TASK_INSTRUCTIONS[kind])]
    )[0]
    t1 = time.perf_counter()
    hits = client.query_points(
        collection or get_settings().vectors.alias,
        query=vec.tolist(),
        limit=top_k,
        query_filter=filters,
        with_payload=True,
    ).points
    if timings is not None:
        timings.labels("embed").observe(t1 - t0)
        timings.labels("vector_search").observe(time.perf_counter() - t1)
    out = []
    for h in hits:
        p = dict(h.payload or {})
        item = {"id": str(h.id), "score": float(h.score), **p}
        if presign and p.get("object_key"):
            item["url"] = presign(
                p["object_key"]
            )  # keys come from the index, never from the request
        out.append(item)
    return out


PUBLIC_FIELDS = (
    "kind",
    "clip_id",
    "video_id",
    "source",
    "start_ms",
    "end_ms",
    "duration_s",
    "caption",
    "dataset",
    "snapshot",
)


def public_uri(uri: str | None) -> str | None:
    """A source URI a client may see: a bucket URI; a server path is not shown."""
    return uri if isinstance(uri, str) and uri.startswith("s3://") else None


def public_hit(hit: dict[str, Any], presign=None) -> dict[str, Any]:  # noqa: ANN001
    """What an API client sees of a hit: ids, times, caption, datasets, and a store URL (a
    presigned S3 URL) or the API's thumbnail route — never a server path or a ``file://`` URL."""
    out = {"id": hit["id"], "score": hit["score"], **{k: hit.get(k) for k in PUBLIC_FIELDS}}
    out["video"] = public_uri(hit.get("video"))
    out["source_uri"] = public_uri(hit.get("source_uri"))
    url = presign(hit["object_key"]) if presign and hit.get("object_key") else None
    out["url"] = url if url and url.startswith(("http://", "https://")) else None
    item = hit.get("clip_id") if hit.get("kind") == "clip" else hit.get("video_id")
    if item:
        kind = "clips" if hit.get("kind") == "clip" else "videos"
        out["thumbnail"] = f"/v1/thumbnails/{kind}/{item}"
    return out
