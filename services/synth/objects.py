"""A clip's objects in the store (``shared.layout``): its file, sampled frames and keyframe
uploaded, the Frame rows that make it stored, and their removal when it stops being kept."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, update

from shared import layout
from shared.db import session_scope
from shared.db.models import Clip, ClipHashBand, Frame
from shared.ids import stable_id
from shared.media.frames import sampling_fps

log = logging.getLogger(__name__)


def jpeg(frame: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def clip_fps(clip: Clip, n: int) -> float | None:
    """The rate a clip's ``n`` stored frames sample it at (n / its span, as from its mp4)."""
    return sampling_fps(n, (clip.end_ms - clip.start_ms) / 1000)


def upload_clip(store, cand: dict[str, Any], clip_file: Path) -> None:  # noqa: ANN001
    """The clip's file, 8 frames and keyframe in the object store."""
    cid, frames, key_frame = cand["id"], cand["frames"], cand["key_frame"]
    store.put_file(layout.clip_key(cid), clip_file, "video/mp4")
    for key, fr in zip(layout.frame_keys(cid, len(frames)), frames, strict=True):
        store.put_bytes(key, jpeg(fr), "image/jpeg")
    store.put_bytes(layout.keyframe_key(cid), jpeg(key_frame), "image/jpeg")


def frame_rows(cand: dict[str, Any]) -> list[dict[str, Any]]:
    """The Frame rows of an uploaded clip (written last: they make it stored, ``clip_stored``)."""
    cid, frames, times, key_frame = cand["id"], cand["frames"], cand["times"], cand["key_frame"]
    keys = layout.frame_keys(cid, len(frames))
    rows = [
        {
            "id": stable_id(cid, i, "sample"),
            "clip_id": cid,
            "index": i,
            "kind": "sample",
            "time_ms": int(t * 1000),
            "object_key": k,
            "width": fr.shape[1],
            "height": fr.shape[0],
        }
        for i, (k, t, fr) in enumerate(zip(keys, times, frames, strict=True))
    ]
    rows.append(
        {
            "id": stable_id(cid, 0, "keyframe"),
            "clip_id": cid,
            "index": 0,
            "kind": "keyframe",
            "time_ms": int(times[len(times) // 2] * 1000),
            "object_key": layout.keyframe_key(cid),
            "width": key_frame.shape[1],
            "height": key_frame.shape[0],
        }
    )
    return rows


def unkeep(store, cids: list[str], reason: str) -> None:  # noqa: ANN001
    """Stop keeping clips (with the reason), then remove their objects."""
    with session_scope() as db:
        db.execute(update(Clip).where(Clip.id.in_(cids)).values(kept=False, reject_reason=reason))
    try:
        remove_objects(store, cids)
    except Exception:  # noqa: BLE001 - the store may be what failed; the object_key left says so
        pass


def remove_objects(store, cids: list[str]) -> None:  # noqa: ANN001
    """Delete the objects of clips that are no longer kept: their Frame rows first (so no consumer
    takes them as stored), then the bytes, then the keys on the row. A clip not kept whose
    ``object_key`` is still set has objects left to delete (a retry of its caption stage does
    it)."""
    if not cids:
        return
    with session_scope() as db:
        db.execute(delete(Frame).where(Frame.clip_id.in_(cids)))
        db.execute(delete(ClipHashBand).where(ClipHashBand.clip_id.in_(cids)))
    for cid in cids:
        store.delete_prefix(layout.clip_prefix(cid))
    with session_scope() as db:
        db.execute(update(Clip).where(Clip.id.in_(cids)).values(object_key=None, frame_prefix=None))
