"""Step 1, ``media``: probe + integrity + limits (repair by remux), one low-res decode pass feeding
the scene split, motion (the temporal-dynamics filter, run here before the caption step's
consistency filter: see ``stages`` for why), perceptual hashes (near-duplicates) and stored frames;
clips cut by stream copy in one pass (an exact re-encode where copy is impossible); 8 uniform
frames + a keyframe per clip; 8 frames of the whole video. Each kept clip goes through the
near-duplicate claim and finalize (``services.synth.dedup``)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import update

from services.synth import dedup, objects
from services.synth.errors import Rejected
from services.synth.sources import SourceItem, fetch_s3
from shared import layout
from shared.config import get_settings
from shared.db import session_scope, upsert
from shared.db.models import Video
from shared.ids import clip_id as make_clip_id
from shared.media import MediaError
from shared.media.analysis import (
    clip_frames,
    decode_once,
    detect_cuts,
    motion_score,
    phash,
    split_spans,
)
from shared.media.clip import copy_clips, extract_clip, remux
from shared.media.probe import check_limits, probe
from shared.storage import get_store

log = logging.getLogger(__name__)


def media_stage(item: SourceItem, video_id: str, source_id: str | None) -> dict[str, Any]:
    s = get_settings().synth
    with tempfile.TemporaryDirectory(prefix="univr-synth-") as tmp:
        path = Path(item.local_path) if item.local_path else fetch_s3(item, Path(tmp) / "source")
        meta = {"sidecar": item.sidecar, **item.extra}

        def reject(why: str, info: dict | None = None) -> Rejected:
            _reject_video(video_id, source_id, item, why, meta, info)
            return Rejected(why)

        pr, an, path = _analyse(path, Path(tmp), meta, s, reject)
        cuts = detect_cuts(an.small, an.times, s.scene_threshold, pixel_delta=s.scene_pixel_delta)
        spans = split_spans(an.duration_s, cuts, s.min_clip_s, s.max_clip_s, s.stride_clip_s)
        if not spans:
            raise reject(f"no shot of at least {s.min_clip_s:.1f} s", pr.as_dict())
        _store_video(item, video_id, source_id, meta, pr, an, s)
        candidates = [_clip_candidate(item.uri, an, start, end, s) for start, end in spans]
        moving = [c for c in candidates if c["reason"] is None]
        notes: dict[str, Any] = {}
        cut = _cut_clips(path, [(c["start"], c["end"]) for c in moving], Path(tmp), s, notes)
        files = dict(zip([c["id"] for c in moving], cut, strict=True))
        kept, reasons = _keep_clips(candidates, files, video_id, s)
    if kept == 0:
        why = "all clips rejected: " + "; ".join(sorted(set(r.split(" (")[0] for r in reasons)))
        with session_scope() as db:
            db.execute(
                update(Video)
                .where(Video.id == video_id)
                .values(status="rejected", reject_reason=why)
            )
        raise Rejected(why)
    fallback = notes.get("copy_fallback")
    return {
        "clips": kept,
        "clips_rejected": len(reasons),
        "frames": kept * (s.frames_per_clip + 1),
        "clip_reasons": sorted(set(reasons)),
        "cuts": [round(c, 3) for c in cuts],
        "clips_reencoded": len(cut) if (fallback or not s.clip_copy) else 0,
        **({"copy_fallback": fallback} if fallback else {}),
        **({"repaired": "remux"} if meta.get("repaired") else {}),
    }


def _analyse(path: Path, tmp: Path, meta: dict, s, reject):  # noqa: ANN001, ANN202
    """Probe, check the limits, decode once (repairing by remux what a remux can). Returns the
    probe, the analysis and the path decoded; raises what ``reject`` makes for a bad input."""
    try:
        pr = probe(path)
    except MediaError as exc:
        raise reject(str(exc)) from exc
    reason = check_limits(pr, s)
    if reason:
        raise reject(reason, pr.as_dict())
    try:
        an = decode_once(path, s.analysis_side, s.frame_side)
    except MediaError:
        an = None
    if an is None or an.decode_errors:
        try:  # repair what a remux can, then decode again
            fixed = remux(path, tmp / "repaired.mp4")
            an = decode_once(fixed, s.analysis_side, s.frame_side)
            path = fixed
            meta["repaired"] = "remux"
        except MediaError as exc:
            if an is None:
                raise reject(f"undecodable video ({exc})", pr.as_dict()) from exc
    if an.duration_s < s.min_duration_s or len(an.times) < 2:
        raise reject(f"too short ({an.duration_s:.2f} s, {len(an.times)} frame(s))", pr.as_dict())
    return pr, an, path


def _store_video(
    item: SourceItem,
    video_id: str,
    source_id: str | None,
    meta: dict,
    pr,
    an,  # noqa: ANN001
    s,
) -> None:  # noqa: ANN001
    """The video's row (``ok``), then its whole-video frames in the store."""
    with session_scope() as db:
        dedup.lock_video(db, video_id)  # the gc re-reads the status under this lock to delete
        upsert(
            db,
            Video,
            [
                {
                    "id": video_id,
                    "source_id": source_id,
                    "uri": item.uri,
                    "raw_caption": item.raw_caption,
                    "meta": meta,
                    "duration_s": an.duration_s,
                    "width": pr.width,
                    "height": pr.height,
                    "fps": pr.fps,
                    "codec": pr.codec,
                    "frame_count": len(an.times),
                    "status": "ok",
                    "reject_reason": None,
                }
            ],
        )
    vframes, _ = clip_frames(an, 0.0, an.duration_s + 1, s.frames_per_clip)
    store = get_store()
    for key, fr in zip(layout.video_frame_keys(video_id, s.frames_per_clip), vframes, strict=True):
        store.put_bytes(key, objects.jpeg(fr), "image/jpeg")


def _keep_clips(
    candidates: list[dict[str, Any]], files: dict[str, Path], video_id: str, s
) -> tuple[int, list[str]]:  # noqa: ANN001
    """Claim, upload and finalize each moving clip; record the others with their reason.
    Returns how many were kept and the reasons of the rest."""
    store = get_store()
    kept, reasons = 0, []
    for cand in candidates:
        if cand["reason"] is None and dedup.claim_clip(cand, video_id, s.dedup_hamming):
            try:
                objects.upload_clip(store, cand, files[cand["id"]])
            except Exception as exc:  # the task retries (and claims the clip again) or fails
                why = f"its objects could not be stored ({type(exc).__name__}: {exc})"[:500]
                objects.unkeep(store, [cand["id"]], why)
                raise
            if dedup.finalize_clip(store, cand, video_id, s.dedup_hamming):
                kept += 1
                continue
        if cand["id"] not in files:  # static: recorded with its reason (a duplicate already is)
            dedup.save_rejected(cand, video_id)
        reasons.append(cand["reason"])
    return kept, reasons


def _clip_candidate(uri: str, an, start: float, end: float, s) -> dict[str, Any]:  # noqa: ANN001
    """A span's clip id, filter scores and stored frames, and the static filter's verdict."""
    motion = motion_score(an.small, an.times, start, end)
    frames, times = clip_frames(an, start, end, s.frames_per_clip)
    key_frame = frames[len(frames) // 2]
    reason = (
        f"static clip (motion {motion:.2f} < {s.static_threshold})"
        if motion < s.static_threshold
        else None
    )
    return {
        "id": make_clip_id(uri, int(start * 1000), int(end * 1000)),
        "start": start,
        "end": end,
        "motion": motion,
        "frames": frames,
        "times": times,
        "key_frame": key_frame,
        "phash": phash(key_frame),
        "reason": reason,
    }


def _cut_clips(
    path: Path,
    spans: list[tuple[float, float]],
    tmp: Path,
    s,  # noqa: ANN001
    notes: dict[str, Any] | None = None,
) -> list[Path]:
    """One clip file per span: a stream copy of all spans in one pass over the source's packets,
    or (codecs MP4 cannot carry, a failed copy, ``clip_copy`` off) one exact re-encode per span.
    A stream copy that failed is logged, and why goes to ``notes["copy_fallback"]`` (the media
    stage records it on the item, where ``univr synth status`` shows it)."""
    dsts = [tmp / f"clip-{i:04d}.mp4" for i in range(len(spans))]
    if spans and s.clip_copy:
        try:
            return copy_clips(path, spans, dsts)
        except MediaError as exc:
            why = f"stream copy impossible ({exc}): {len(spans)} clip(s) re-encoded"[:500]
            log.warning("%s: %s", path.name, why)
            if notes is not None:
                notes["copy_fallback"] = why
    return [
        extract_clip(path, dst, a, b, s.clip_max_side)
        for (a, b), dst in zip(spans, dsts, strict=True)
    ]


def _reject_video(
    video_id: str,
    source_id: str | None,
    item: SourceItem,
    reason: str,
    meta: dict,
    probe_info: dict | None = None,
) -> None:
    info = probe_info or {}
    with session_scope() as db:
        upsert(
            db,
            Video,
            [
                {
                    "id": video_id,
                    "source_id": source_id,
                    "uri": item.uri,
                    "raw_caption": item.raw_caption,
                    "meta": meta,
                    "status": "rejected",
                    "reject_reason": reason,
                    "duration_s": info.get("duration_s"),
                    "width": info.get("width"),
                    "height": info.get("height"),
                    "fps": info.get("fps"),
                    "codec": info.get("codec"),
                }
            ],
        )
