"""Step 2, ``caption``: the raw caption rectified (filter 1), the cross-modal consistency of the raw
caption against every kept clip (filter 2, ``consistency``), dropping mismatches before any
captioning request, then captions of the clips left (template or OpenAI-compatible captioner).
Filter 3, temporal dynamics, ran earlier, in the media step (``media``: the motion score comes
from its decode pass and a static clip is never cut or stored; each filter judges each clip alone,
so the clips kept are those of the paper's order, see ``stages``)."""

from __future__ import annotations

import io
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import select

from services.synth import consistency, objects
from services.synth.captioner import (
    FRAME_STYLES,
    ClipCaptions,
    ClipContext,
    make_captioner,
    rectify,
)
from services.synth.errors import Rejected
from shared import layout
from shared.config import SynthSettings, get_settings
from shared.db import session_scope, upsert
from shared.db.models import Caption, Clip, Video
from shared.ids import stable_id
from shared.storage import get_store


def _clip_sidecar(video: Video, clip: Clip) -> dict[str, Any] | None:
    side = (video.meta or {}).get("sidecar")
    if not side:
        return None
    from shared.world.spec import sub_spec

    return sub_spec(side, clip.start_ms / 1000, clip.end_ms / 1000)


def check_raw_caption(raw: str, sidecar: dict[str, Any] | None) -> tuple[str, str | None]:
    """Rectify the raw caption; with ground truth, also flag captions naming colours or shapes the
    video does not contain. Returns (usable caption or '', reason it was dropped or None)."""
    text_ok = rectify(raw)
    if not text_ok:
        return "", "raw caption unusable (empty, a file name or hashtags)"
    if sidecar:
        from shared.world.vocab import COLORS, SHAPES

        present = {o["color"] for s in sidecar["shots"] for o in s["objects"]} | {
            o["color_after"] for s in sidecar["shots"] for o in s["objects"] if o.get("color_after")
        }
        shapes = {o["shape"] for s in sidecar["shots"] for o in s["objects"]}
        words = set(text_ok.lower().replace(",", " ").replace(".", " ").split())
        wrong = sorted((words & set(COLORS)) - present) + sorted((words & set(SHAPES)) - shapes)
        if wrong:
            return "", f"raw caption does not match the video (mentions {', '.join(wrong)})"
    return text_ok, None


def caption_stage(video_id: str, seed: int = 0) -> dict[str, Any]:
    settings = get_settings()
    captioner = make_captioner(settings.caption, settings.synth.profile_weights)
    store = get_store()
    with session_scope() as db:
        video = db.get_one(Video, video_id)
        clips = db.scalars(
            select(Clip)
            .where(Clip.video_id == video_id, Clip.kept.is_(True))
            .order_by(Clip.start_ms)
        ).all()
        leftover = list(
            db.scalars(
                select(Clip.id).where(
                    Clip.video_id == video_id, Clip.kept.is_(False), Clip.object_key.is_not(None)
                )
            )
        )
        db.expunge_all()
    objects.remove_objects(store, leftover)  # of clips a previous attempt's filter dropped
    raw, raw_reason = check_raw_caption(video.raw_caption or "", (video.meta or {}).get("sidecar"))
    result: dict[str, Any] = {"raw_caption_dropped": raw_reason}
    rectified = rectify(video.raw_caption or "")
    if settings.synth.consistency_on and clips and rectified:
        clips, result["clips_inconsistent"] = _consistency(video, clips, rectified, settings.synth)
    rows = []
    for i, clip in enumerate(clips):
        nxt = clips[i + 1] if i + 1 < len(clips) else None
        rows += _caption_clip(captioner, store, video, clip, nxt, raw, seed)
    with session_scope() as db:
        upsert(db, Caption, rows)
    result.update(captioned_clips=len(clips), captions=len(rows))
    return result


def _consistency(
    video: Video, clips: Sequence[Clip], raw: str, s: SynthSettings
) -> tuple[list[Clip], int]:
    """Filter 2 on the raw caption: every clip's score recorded, mismatches dropped. Returns the
    clips left and how many were dropped; raises ``Rejected`` when none is left."""
    scores, scorer = consistency.raw_caption_scores(
        clips, raw, (video.meta or {}).get("sidecar"), s.consistency_scorer
    )
    dropped = set(
        consistency.drop_inconsistent(clips, scores, s.consistency_threshold, "raw caption")
    )
    if len(dropped) == len(clips):
        raise Rejected(
            f"all clips rejected: the raw caption does not match the video "
            f"(cross-modal consistency, {scorer} scorer)"
        )
    return [c for c in clips if c.id not in dropped], len(dropped)


def _frames(store, keys: list[str]) -> list[np.ndarray]:  # noqa: ANN001
    from PIL import Image

    return [np.asarray(Image.open(io.BytesIO(store.get_bytes(k))).convert("RGB")) for k in keys]


def _caption_clip(
    captioner,
    store,
    video: Video,
    clip: Clip,
    nxt: Clip | None,
    raw: str,  # noqa: ANN001
    seed: int,
) -> list[dict[str, Any]]:
    """The Caption rows of one clip (every style the captioner writes)."""
    ctx = _context(store, video, clip, nxt, raw)
    caps = captioner.caption(ctx, random.Random(f"{seed}|{clip.id}"))
    # the TV2V pair's target is the clip's whole video (SPEC §3.4: (clip c_jl, its video v_j))
    return _rows(clip, caps, layout.keyframe_key(clip.id), layout.video_ref(video.id))


def _context(store, video: Video, clip: Clip, nxt: Clip | None, raw: str) -> ClipContext:  # noqa: ANN001
    """What the captioner is shown: the clip's frames, its stored keyframe (the very object the
    T2I and TI2V pairs use) and, for the openai back end, the TV2V target's frames (the whole
    video's: the target of every TV2V pair); the template reads what follows in the next clip."""
    n = get_settings().synth.frames_per_clip
    frames = _frames(store, layout.frame_keys(clip.id, n))
    target_keys = layout.video_frame_keys(video.id, n)
    openai = get_settings().caption.backend == "openai"
    return ClipContext(
        clip_id=clip.id,
        frames=frames,
        keyframe=_frames(store, [layout.keyframe_key(clip.id)])[0],
        keyframe_t=(len(frames) // 2 + 0.5) / len(frames) * (clip.end_ms - clip.start_ms) / 1000,
        raw_caption=raw,
        sidecar=_clip_sidecar(video, clip),
        next_sidecar=_clip_sidecar(video, nxt) if nxt is not None else None,
        target_frames=_frames(store, target_keys) if openai else None,
    )


def _rows(clip: Clip, caps: ClipCaptions, key: str, target: str) -> list[dict[str, Any]]:
    """Caption rows, each with the version of the prompt that wrote it, the captioner model, and
    in ``meta`` what it describes: the keyframe, the TI2V strategy, the TV2V relation and target."""
    ver = caps.prompt_versions
    texts: list[tuple[str, str, str, str, dict[str, Any]]] = [
        (style, "clip", text_, ver["video_caption"], {}) for style, text_ in caps.video.items()
    ]
    texts += [
        (FRAME_STYLES[style], "frame", text_, ver["frame_caption"], {"frame_key": key})
        for style, text_ in caps.frame.items()
    ]
    texts.append(
        (
            "composed_image",
            "composed",
            caps.composed_image,
            ver["composed_image"],
            {"strategy": caps.strategy, "frame_key": key},
        )
    )
    texts.append(
        (
            "composed_video",
            "composed",
            caps.composed_video,
            ver["composed_video"],
            {"relation": caps.relation, "target": target},
        )
    )
    rid = caps.request_ids[-1] if caps.request_ids else None
    return [
        {
            "id": stable_id(clip.id, style, caps.model, v),
            "target_kind": kind,
            "target_id": clip.id,
            "style": style,
            "text": text_,
            "info_profile": caps.info_profile,
            "model": caps.model,
            "prompt_version": v,
            "request_id": rid,
            "meta": meta,
        }
        for style, kind, text_, v, meta in texts
    ]
