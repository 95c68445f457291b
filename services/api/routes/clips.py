"""``GET /v1/clips/{id}`` (a clip, its captions and filter scores) and
``GET /v1/thumbnails/{kind}/{id}`` (a clip's keyframe or a video's middle frame)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import Response
from sqlalchemy import select

from services.api.deps import parse_uuid, require
from services.api.search import public_uri
from shared.db import session_scope
from shared.db.models import Caption, Clip, Video

router = APIRouter()


@router.get("/v1/clips/{clip_id}")
def clip_route(clip_id: str, _: list[str] = Depends(require("search"))) -> dict[str, Any]:
    cid = parse_uuid(clip_id, "clip id")
    with session_scope() as s:
        clip = s.get(Clip, cid)
        if clip is None:
            raise HTTPException(404, "no such clip")
        video = s.get(Video, clip.video_id)
        caps = {c.style: c.text for c in s.scalars(select(Caption).where(Caption.target_id == cid))}
        return {
            "id": clip.id,
            "video_id": clip.video_id,
            "video": public_uri(video.uri) if video else None,
            "start_ms": clip.start_ms,
            "end_ms": clip.end_ms,
            "kept": clip.kept,
            "reject_reason": clip.reject_reason,
            "filter_scores": clip.filter_scores,
            "captions": caps,
            "object_key": clip.object_key,
        }


@router.get("/v1/thumbnails/{kind}/{item_id}")
def thumbnail(
    kind: Literal["clips", "videos"], item_id: str, _: list[str] = Depends(require("search"))
) -> Response:
    from shared.storage import ObjectNotFound, get_store

    iid = parse_uuid(item_id, "id")
    from shared import layout
    from shared.config import get_settings

    key = layout.thumbnail_key(kind, iid, get_settings().synth.frames_per_clip)
    try:
        return Response(get_store().get_bytes(key), media_type="image/jpeg")
    except (ObjectNotFound, FileNotFoundError):
        raise HTTPException(404, "no thumbnail") from None
