"""``POST /v1/search``: a query of any kind (text, image, video, text with either) against the
live index, with payload filters.

Uploads are decoded by shared/media/upload.py (allow-listed formats, size checked from headers,
a private temp dir), at most ``api.max_decodes`` at once per process (429 beyond), so a process's
decode memory is bounded by that count times the per-upload pixel budget: with the defaults, an
image is at most 4096×4096 RGB (48 MiB, about twice that while PIL converts it) and a video
frame at most 3840×2160 (24 MiB) while the kept frames are resized to 448 px — about 200 MiB for
two decodes at once (measured: tests/unit/api/test_security_memory.py)."""

from __future__ import annotations

import threading
import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from services.api.deps import Services, decode_b64, get_services, require
from shared.config import get_settings

SEARCHES = Counter("univr_search_requests_total", "Search requests", ["kind", "status"])
LATENCY = Histogram("univr_search_latency_seconds", "Search latency")
STAGES = Histogram("univr_search_stage_seconds", "Search time by stage", ["stage"])

router = APIRouter()


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)
    source: str | None = Field(None, max_length=200)
    dataset: str | None = Field(None, max_length=100)
    kind: Literal["clip", "video"] | None = None
    min_duration: float | int | None = Field(None, ge=0, le=1e6)
    max_duration: float | int | None = Field(None, ge=0, le=1e6)

    @model_validator(mode="after")
    def _ordered(self) -> Filters:
        lo, hi = self.min_duration, self.max_duration
        if lo is not None and hi is not None and lo > hi:
            raise ValueError("min_duration must not be above max_duration")
        return self


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)
    text: str | None = Field(None, min_length=1, max_length=8000)
    image_b64: str | None = Field(None, description="A JPEG/PNG/WebP image, base64")
    video_b64: str | None = Field(None, description="A short MP4/MKV/WebM/AVI video, base64")
    top_k: StrictInt = Field(10, ge=1, le=100)
    filters: Filters | None = None

    @model_validator(mode="after")
    def _one_visual(self) -> SearchRequest:
        if self.image_b64 and self.video_b64:
            raise ValueError("give an image or a video, not both")
        return self


class DecodeSlots:
    """At most ``api.max_decodes`` media decodes at once in this process; beyond: 429."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = 0

    def __enter__(self) -> DecodeSlots:
        with self._lock:
            if self._busy >= get_settings().api.max_decodes:
                raise HTTPException(
                    429, "too many media decodes at once; try again", headers={"Retry-After": "1"}
                )
            self._busy += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._busy -= 1


DECODES = DecodeSlots()


def _media(req: SearchRequest) -> tuple[Any, Any]:
    from shared.media.upload import decode_image, decode_video

    if not (req.image_b64 or req.video_b64):
        return None, None
    with DECODES:
        if req.image_b64:
            return decode_image(decode_b64(req.image_b64, "image_b64")), None
        frames = decode_video(
            decode_b64(req.video_b64 or "", "video_b64"),
            get_settings().model.num_frames,
            max_side=448,
        )
        return None, frames


@router.post("/v1/search")
def search_route(
    req: SearchRequest,
    _: list[str] = Depends(require("search")),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    from services.api.search import build_filter, public_hit, query_kind, search
    from shared.storage import get_store

    t0 = time.perf_counter()
    image, video = _media(req)  # MediaError: 422 (errors.py)
    try:
        kind = query_kind(req.text, image, video)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    f = req.filters
    flt = build_filter(f.source, f.dataset, f.kind, f.min_duration, f.max_duration) if f else None
    store = get_store()
    try:
        results = search(
            services.embedder,
            services.client,
            text=req.text,
            image=image,
            video=video,
            top_k=req.top_k,
            filters=flt,
            timings=STAGES,
        )
    except ValueError:  # e.g. no live index yet, an input the model cannot take
        SEARCHES.labels(kind, "error").inc()
        raise HTTPException(
            409, "search unavailable: no usable live index for this query"
        ) from None
    except Exception as exc:  # noqa: BLE001 - the index is missing or being swapped
        if "not found" in str(exc).lower() or "doesn't exist" in str(exc).lower():
            services.reset_client()
            raise HTTPException(
                409, "no live index yet: build and promote one (univr index build / promote)"
            ) from None
        raise
    LATENCY.observe(time.perf_counter() - t0)
    SEARCHES.labels(kind, "ok").inc()
    return {"kind": kind, "results": [public_hit(h, store.presign) for h in results]}
