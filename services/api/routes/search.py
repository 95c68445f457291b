"""``POST /v1/search``: a query of any kind (text, image, video, text with either) against the
live index, with payload filters."""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.api.deps import Services, decode_b64, get_services, require
from shared.config import get_settings

SEARCHES = Counter("univr_search_requests_total", "Search requests", ["kind", "status"])
LATENCY = Histogram("univr_search_latency_seconds", "Search latency")

router = APIRouter()


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str | None = Field(None, max_length=200)
    dataset: str | None = Field(None, max_length=100)
    kind: Literal["clip", "video"] | None = None
    min_duration: float | None = Field(None, ge=0, le=1e6)
    max_duration: float | None = Field(None, ge=0, le=1e6)

    @model_validator(mode="after")
    def _ordered(self) -> Filters:
        lo, hi = self.min_duration, self.max_duration
        if lo is not None and hi is not None and lo > hi:
            raise ValueError("min_duration must not be above max_duration")
        return self


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(None, min_length=1, max_length=8000)
    image_b64: str | None = Field(None, description="A JPEG/PNG image, base64")
    video_b64: str | None = Field(None, description="A short video file, base64")
    top_k: int = Field(10, ge=1, le=100)
    filters: Filters | None = None


def _image(b64: str):  # noqa: ANN202
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(decode_b64(b64, "image_b64")))
        image.verify()
        return Image.open(io.BytesIO(decode_b64(b64, "image_b64"))).convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise HTTPException(422, f"image_b64 is not a readable image: {exc}") from None


@router.post("/v1/search")
def search_route(req: SearchRequest, _: list[str] = Depends(require("search")),
                 services: Services = Depends(get_services)) -> dict[str, Any]:
    from services.api.search import build_filter, query_kind, search
    from shared.media import MediaError

    t0 = time.perf_counter()
    image = video = None
    if req.image_b64:
        image = _image(req.image_b64)
    tmp = None
    try:
        if req.video_b64:
            tmp = tempfile.NamedTemporaryFile(suffix=".video", delete=False)
            tmp.write(decode_b64(req.video_b64, "video_b64"))
            tmp.close()
            from shared.media.frames import sample_frames

            try:
                video, _times = sample_frames(tmp.name, get_settings().model.num_frames,
                                              max_side=448)
            except MediaError as exc:
                raise HTTPException(422, f"video_b64: {exc}") from None
        try:
            kind = query_kind(req.text, image, video)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        f = req.filters
        flt = (build_filter(f.source, f.dataset, f.kind, f.min_duration, f.max_duration)
               if f else None)
        from shared.storage import get_store

        store = get_store()
        try:
            results = search(services.embedder, services.client, text=req.text, image=image,
                             video=video, top_k=req.top_k, filters=flt, presign=store.presign)
        except ValueError as exc:  # e.g. no live index yet
            SEARCHES.labels(kind, "error").inc()
            raise HTTPException(409, f"search unavailable: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - the index is missing or being swapped
            if "not found" in str(exc).lower() or "doesn't exist" in str(exc).lower():
                services.reset_client()
                raise HTTPException(409, "no live index yet: build and promote one "
                                    "(univr index build / promote)") from None
            raise
    finally:
        if tmp is not None:
            Path(tmp.name).unlink(missing_ok=True)
    LATENCY.observe(time.perf_counter() - t0)
    SEARCHES.labels(kind, "ok").inc()
    return {"kind": kind, "results": results}
