"""The pipeline stages for one source video, each idempotent (deterministic IDs, upserts):

1. ``media``: probe + integrity + limits (repair by remux), one low-res decode pass feeding the
   scene split, motion (static filter), perceptual hashes (near-duplicates) and stored frames;
   clips cut by stream copy in one pass (an exact re-encode where copy is impossible); 8 uniform
   frames + a keyframe per clip; 8 frames of the whole video.
2. ``caption``: captions of every kept clip (template or OpenAI-compatible captioner), with the
   raw caption rectified.
3. ``pairs``: retrieval pairs of all seven task types with domain hints and hard negatives.

A bad input raises ``Rejected`` with the reason a user reads; anything else is an error the task
retries (and fails for good after ``broker.max_attempts``).
"""

from __future__ import annotations

import io
import json
import logging
import random
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, select, text, update

from services.synth.captioner import ClipContext, make_captioner, rectify
from services.synth.sources import SourceItem, fetch_s3
from shared.config import get_settings
from shared.db import session_scope, upsert
from shared.db.models import Caption, Clip, Frame, Pair, Video, clip_stored, utcnow
from shared.ids import clip_id as make_clip_id
from shared.ids import stable_id
from shared.media import MediaError
from shared.media.analysis import (
    clip_frames,
    decode_once,
    detect_cuts,
    hamming,
    motion_score,
    phash,
    split_spans,
)
from shared.media.clip import copy_clips, extract_clip, remux
from shared.media.frames import sampling_fps
from shared.media.probe import check_limits, probe
from shared.storage import get_store

log = logging.getLogger(__name__)


class Rejected(Exception):
    """The input cannot become clips; the message is the reason."""


def _jpeg(frame: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def frame_keys(clip: str, n: int) -> list[str]:
    return [f"clips/{clip}/frames/{i:02d}.jpg" for i in range(n)]


def keyframe_key(clip: str) -> str:
    return f"clips/{clip}/key/00.jpg"


def video_frame_keys(video_id: str, n: int) -> list[str]:
    return [f"videos/{video_id}/frames/{i:02d}.jpg" for i in range(n)]


# --- 1. media --------------------------------------------------------------------------------------

def media_stage(item: SourceItem, video_id: str, source_id: str | None) -> dict[str, Any]:
    s = get_settings().synth
    store = get_store()
    with tempfile.TemporaryDirectory(prefix="univr-synth-") as tmp:
        path = Path(item.local_path) if item.local_path else fetch_s3(item, Path(tmp) / "source")
        meta = {"sidecar": item.sidecar, **item.extra}
        try:
            pr = probe(path)
        except MediaError as exc:
            _reject_video(video_id, source_id, item, str(exc), meta)
            raise Rejected(str(exc)) from exc
        reason = check_limits(pr, s)
        if reason:
            _reject_video(video_id, source_id, item, reason, meta, pr.as_dict())
            raise Rejected(reason)
        try:
            an = decode_once(path, s.analysis_side, s.frame_side)
        except MediaError:
            an = None
        if an is None or an.decode_errors:
            try:  # repair what a remux can, then decode again
                fixed = remux(path, Path(tmp) / "repaired.mp4")
                an = decode_once(fixed, s.analysis_side, s.frame_side)
                path = fixed
                meta["repaired"] = "remux"
            except MediaError as exc:
                if an is None:
                    why = f"undecodable video ({exc})"
                    _reject_video(video_id, source_id, item, why, meta, pr.as_dict())
                    raise Rejected(why) from exc
        if an.duration_s < s.min_duration_s or len(an.times) < 2:
            why = f"too short ({an.duration_s:.2f} s, {len(an.times)} frame(s))"
            _reject_video(video_id, source_id, item, why, meta, pr.as_dict())
            raise Rejected(why)
        cuts = detect_cuts(an.small, an.times, s.scene_threshold, pixel_delta=s.scene_pixel_delta)
        spans = split_spans(an.duration_s, cuts, s.min_clip_s, s.max_clip_s, s.stride_clip_s)
        if not spans:
            why = f"no shot of at least {s.min_clip_s:.1f} s"
            _reject_video(video_id, source_id, item, why, meta, pr.as_dict())
            raise Rejected(why)
        with session_scope() as db:
            serialise(db)  # the garbage collector re-reads the status under the same lock before deleting
            upsert(db, Video, [{"id": video_id, "source_id": source_id, "uri": item.uri, "raw_caption": item.raw_caption,
                                "meta": meta, "duration_s": an.duration_s, "width": pr.width, "height": pr.height,
                                "fps": pr.fps, "codec": pr.codec, "frame_count": len(an.times), "status": "ok",
                                "reject_reason": None}])
        vframes, _ = clip_frames(an, 0.0, an.duration_s + 1, s.frames_per_clip)
        for key, fr in zip(video_frame_keys(video_id, s.frames_per_clip), vframes, strict=True):
            store.put_bytes(key, _jpeg(fr), "image/jpeg")
        candidates = [_clip_candidate(item.uri, an, start, end, s) for start, end in spans]
        moving = [c for c in candidates if c["reason"] is None]
        notes: dict[str, Any] = {}
        cut = _cut_clips(path, [(c["start"], c["end"]) for c in moving], Path(tmp), s, notes)
        files = dict(zip([c["id"] for c in moving], cut, strict=True))
        fallback = notes.get("copy_fallback")
        kept, rejected, reasons = 0, 0, []
        for cand in candidates:
            if cand["reason"] is None and _claim_clip(cand, video_id, s.dedup_hamming):
                try:
                    _upload_clip(store, cand, files[cand["id"]])
                except Exception as exc:  # the task retries (and claims the clip again) or fails for good
                    _unkeep(store, [cand["id"]], f"its objects could not be stored ({type(exc).__name__}: {exc})"[:500])
                    raise
                if _finalize_clip(store, cand, video_id, s.dedup_hamming):
                    kept += 1
                    continue
            if cand["id"] not in files:  # static: recorded with its reason (a duplicate already is)
                _save_rejected(cand, video_id)
            rejected += 1
            reasons.append(cand["reason"])
        if kept == 0:
            why = "all clips rejected: " + "; ".join(sorted(set(r.split(" (")[0] for r in reasons)))
            with session_scope() as db:
                db.execute(update(Video).where(Video.id == video_id).values(status="rejected", reject_reason=why))
            raise Rejected(why)
        return {"clips": kept, "clips_rejected": rejected, "frames": kept * (s.frames_per_clip + 1),
                "clip_reasons": sorted(set(reasons)), "cuts": [round(c, 3) for c in cuts],
                "clips_reencoded": len(cut) if (fallback or not s.clip_copy) else 0,
                **({"copy_fallback": fallback} if fallback else {}),
                **({"repaired": "remux"} if meta.get("repaired") else {})}


def _clip_candidate(uri: str, an, start: float, end: float, s) -> dict[str, Any]:  # noqa: ANN001
    """A span's clip id, filter scores and stored frames, and the static filter's verdict."""
    motion = motion_score(an.small, an.times, start, end)
    frames, times = clip_frames(an, start, end, s.frames_per_clip)
    key_frame = frames[len(frames) // 2]
    reason = f"static clip (motion {motion:.2f} < {s.static_threshold})" if motion < s.static_threshold else None
    return {"id": make_clip_id(uri, int(start * 1000), int(end * 1000)), "start": start, "end": end,
            "motion": motion, "frames": frames, "times": times, "key_frame": key_frame, "phash": phash(key_frame),
            "reason": reason}


def _cut_clips(path: Path, spans: list[tuple[float, float]], tmp: Path, s,  # noqa: ANN001
               notes: dict[str, Any] | None = None) -> list[Path]:
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
    return [extract_clip(path, dst, a, b, s.clip_max_side) for (a, b), dst in zip(spans, dsts, strict=True)]


def serialise(db) -> None:  # noqa: ANN001
    """Take the synthesis lock for the rest of ``db``'s transaction: the dedup checks with the rows
    they write, and the garbage collector's check-then-delete, run one at a time across workers
    (an advisory lock on PostgreSQL; SQLite's write lock, taken by a write that changes nothing)."""
    dialect = db.get_bind().dialect.name
    if dialect == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(727272)"))
    elif dialect == "sqlite":
        db.execute(text("UPDATE clips SET id = id WHERE 0"))


def _claim_clip(cand: dict[str, Any], video_id: str, max_bits: int) -> bool:
    """Record a moving clip: kept (provisionally: until ``_finalize_clip`` its objects are not
    stored), or a near-duplicate of a **stored** clip of another video. Duplicates are only ever
    judged against stored clips, so a clip whose upload fails (for good, or its worker dies) takes
    no other clip down with it."""
    with session_scope() as db:
        dup_of = _find_duplicate(db, cand["phash"], video_id, max_bits)
        if dup_of:
            cand["reason"] = f"near-duplicate of clip {dup_of}"
        upsert(db, Clip, [_clip_row(cand, video_id, dup_of)])
    return dup_of is None


def _finalize_clip(store, cand: dict[str, Any], video_id: str, max_bits: int) -> bool:  # noqa: ANN001
    """After the uploads: the clip becomes stored (its Frame rows), unless a duplicate of another
    video became stored while it was uploading; the check and the Frame rows share one transaction
    under the lock, so of two duplicates in flight at once exactly the first to finish is kept. The
    other stops being kept, with the reason, and its objects go (a failed delete leaves the row's
    ``object_key`` set, for ``univr synth gc``). Returns whether the clip is kept."""
    cid = cand["id"]
    with session_scope() as db:
        dup_of = _find_duplicate(db, cand["phash"], video_id, max_bits)
        if dup_of is None:
            upsert(db, Frame, _frame_rows(cand))
            return True
        cand["reason"] = f"near-duplicate of clip {dup_of}"
        db.execute(update(Clip).where(Clip.id == cid).values(kept=False, reject_reason=cand["reason"], dedup_cluster=dup_of))
    try:
        remove_objects(store, [cid])
    except Exception:  # noqa: BLE001 - the object_key left on the row marks them for the garbage collector
        log.warning("clip %s: objects of a near-duplicate could not be deleted", cid, exc_info=True)
    return False


def _save_rejected(cand: dict[str, Any], video_id: str) -> None:
    with session_scope() as db:
        upsert(db, Clip, [_clip_row(cand, video_id, None)])


def _clip_row(cand: dict[str, Any], video_id: str, dup_of: str | None) -> dict[str, Any]:
    cid, kept = cand["id"], cand["reason"] is None
    return {"id": cid, "video_id": video_id, "start_ms": int(cand["start"] * 1000), "end_ms": int(cand["end"] * 1000),
            "phash": cand["phash"], "filter_scores": {"motion": round(cand["motion"], 3)}, "kept": kept,
            "reject_reason": cand["reason"], "dedup_cluster": dup_of or cid, "claimed_at": utcnow(),
            "object_key": f"clips/{cid}/clip.mp4" if kept else None, "frame_prefix": f"clips/{cid}/frames/" if kept else None}


def _upload_clip(store, cand: dict[str, Any], clip_file: Path) -> None:  # noqa: ANN001
    """The clip's file, 8 frames and keyframe in the object store."""
    cid, frames, key_frame = cand["id"], cand["frames"], cand["key_frame"]
    store.put_file(f"clips/{cid}/clip.mp4", clip_file, "video/mp4")
    for key, fr in zip(frame_keys(cid, len(frames)), frames, strict=True):
        store.put_bytes(key, _jpeg(fr), "image/jpeg")
    store.put_bytes(keyframe_key(cid), _jpeg(key_frame), "image/jpeg")


def _frame_rows(cand: dict[str, Any]) -> list[dict[str, Any]]:
    """The Frame rows of an uploaded clip (written last: they make it stored, ``clip_stored``)."""
    cid, frames, times, key_frame = cand["id"], cand["frames"], cand["times"], cand["key_frame"]
    keys = frame_keys(cid, len(frames))
    rows = [{"id": stable_id(cid, i, "sample"), "clip_id": cid, "index": i, "kind": "sample", "time_ms": int(t * 1000),
             "object_key": k, "width": fr.shape[1], "height": fr.shape[0]}
            for i, (k, t, fr) in enumerate(zip(keys, times, frames, strict=True))]
    rows.append({"id": stable_id(cid, 0, "keyframe"), "clip_id": cid, "index": 0, "kind": "keyframe",
                 "time_ms": int(times[len(times) // 2] * 1000), "object_key": keyframe_key(cid),
                 "width": key_frame.shape[1], "height": key_frame.shape[0]})
    return rows


def _unkeep(store, cids: list[str], reason: str) -> None:  # noqa: ANN001
    """Stop keeping clips (with the reason), then remove their objects."""
    with session_scope() as db:
        db.execute(update(Clip).where(Clip.id.in_(cids)).values(kept=False, reject_reason=reason))
    try:
        remove_objects(store, cids)
    except Exception:  # noqa: BLE001 - the store may be what failed; the object_key left on the row says so
        pass


def remove_objects(store, cids: list[str]) -> None:  # noqa: ANN001
    """Delete the objects of clips that are no longer kept: their Frame rows first (so no consumer
    takes them as stored), then the bytes, then the keys on the row. A clip not kept whose
    ``object_key`` is still set has objects left to delete (a retry of its caption stage does it)."""
    if not cids:
        return
    with session_scope() as db:
        db.execute(delete(Frame).where(Frame.clip_id.in_(cids)))
    for cid in cids:
        store.delete_prefix(f"clips/{cid}/")
    with session_scope() as db:
        db.execute(update(Clip).where(Clip.id.in_(cids)).values(object_key=None, frame_prefix=None))


def _find_duplicate(db, ph: str, video_id: str, max_bits: int) -> str | None:  # noqa: ANN001
    """A stored clip of another video within ``max_bits`` of ``ph``; takes the synthesis lock first,
    so the caller's writes in the same transaction are serialised with every other check."""
    serialise(db)
    rows = db.execute(select(Clip.id, Clip.phash).where(clip_stored(), Clip.video_id != video_id,
                                                        Clip.phash.is_not(None)).order_by(Clip.id)).all()
    for cid, other in rows:
        if hamming(ph, other) <= max_bits:
            return cid
    return None


def _reject_video(video_id: str, source_id: str | None, item: SourceItem, reason: str, meta: dict, probe_info: dict | None = None) -> None:
    info = probe_info or {}
    with session_scope() as db:
        upsert(db, Video, [{"id": video_id, "source_id": source_id, "uri": item.uri, "raw_caption": item.raw_caption,
                            "meta": meta, "status": "rejected", "reject_reason": reason,
                            "duration_s": info.get("duration_s"), "width": info.get("width"), "height": info.get("height"),
                            "fps": info.get("fps"), "codec": info.get("codec")}])


# --- 2. captions -----------------------------------------------------------------------------------

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
            o["color_after"] for s in sidecar["shots"] for o in s["objects"] if o.get("color_after")}
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
        video = db.get(Video, video_id)
        clips = db.scalars(select(Clip).where(Clip.video_id == video_id, Clip.kept.is_(True)).order_by(Clip.start_ms)).all()
        leftover = list(db.scalars(select(Clip.id).where(Clip.video_id == video_id, Clip.kept.is_(False),
                                                         Clip.object_key.is_not(None))))
        db.expunge_all()
    remove_objects(store, leftover)  # of clips a previous attempt's consistency filter dropped
    raw, raw_reason = check_raw_caption(video.raw_caption or "", (video.meta or {}).get("sidecar"))
    rows, n = [], 0
    for i, clip in enumerate(clips):
        from PIL import Image

        frames = [np.asarray(Image.open(io.BytesIO(store.get_bytes(k)))) for k in frame_keys(clip.id, settings.synth.frames_per_clip)]
        key_t = (len(frames) // 2 + 0.5) / len(frames) * (clip.end_ms - clip.start_ms) / 1000
        side = _clip_sidecar(video, clip)
        nxt = _clip_sidecar(video, clips[i + 1]) if i + 1 < len(clips) else None
        ctx = ClipContext(clip_id=clip.id, frames=frames, keyframe=frames[len(frames) // 2], keyframe_t=key_t,
                          raw_caption=raw, sidecar=side, next_sidecar=nxt)
        caps = captioner.caption(ctx, random.Random(f"{seed}|{clip.id}"))
        model, ver = caps.model, caps.prompt_version
        rid = caps.request_ids[-1] if caps.request_ids else None
        for style, text_ in caps.video.items():
            rows.append({"id": stable_id(clip.id, style, model, ver), "target_kind": "clip", "target_id": clip.id, "style": style,
                         "text": text_, "info_profile": caps.info_profile, "model": model, "prompt_version": ver, "request_id": rid})
        for style, target_kind, text_ in (("frame", "frame", caps.frame), ("composed_image", "composed", caps.composed_image),
                                          ("composed_video", "composed", caps.composed_video)):
            rows.append({"id": stable_id(clip.id, style, model, ver), "target_kind": target_kind, "target_id": clip.id,
                         "style": style, "text": text_, "info_profile": caps.info_profile, "model": model,
                         "prompt_version": ver, "request_id": rid})
        n += 1
    with session_scope() as db:
        upsert(db, Caption, rows)
    result = {"captioned_clips": n, "captions": len(rows), "raw_caption_dropped": raw_reason}
    if settings.synth.consistency_filter and clips:
        dropped = consistency_filter(clips, {r["target_id"]: r["text"] for r in rows if r["style"] == "concise"},
                                     settings.synth.consistency_threshold)
        result["clips_inconsistent"] = len(dropped)
        if len(dropped) == len(clips):
            raise Rejected("all clips rejected: captions do not match the video (cross-modal consistency)")
    return result


@lru_cache(maxsize=1)
def _embedder():  # noqa: ANN202 - one model per worker process
    from shared.model import Embedder

    return Embedder.from_settings()


def consistency_filter(clips: list[Clip], captions: dict[str, str], threshold: float) -> list[str]:
    """Cross-modal consistency (SPEC §3.2): the embedder's similarity between a clip's concise
    caption (as a T2V query) and its stored frames. Every score is recorded on the clip; clips below
    ``threshold`` stop being kept, with the reason. Returns the ids of the clips dropped."""
    from shared.model import TASK_INSTRUCTIONS, EmbedInput, VideoFrames

    n = get_settings().synth.frames_per_clip
    scored = [c for c in clips if c.id in captions]
    emb = _embedder()
    q = emb.embed([EmbedInput(text=captions[c.id], instruction=TASK_INSTRUCTIONS["T2V"]) for c in scored])
    v = emb.embed([EmbedInput(video=VideoFrames(frame_keys(c.id, n), fps=clip_fps(c, n))) for c in scored])
    dropped = []
    with session_scope() as db:
        for clip, sim in zip(scored, (q * v).sum(axis=1), strict=True):
            row = db.get(Clip, clip.id)
            row.filter_scores = {**(row.filter_scores or {}), "consistency": round(float(sim), 4)}
            if sim < threshold:
                row.kept = False
                row.reject_reason = f"caption does not match the clip (consistency {sim:.3f} < {threshold})"
                dropped.append(clip.id)
    remove_objects(get_store(), dropped)
    return dropped


# --- 3. pairs --------------------------------------------------------------------------------------

DOMAIN_OF_STYLE = {"concise": "coarse", "abstract": "coarse", "rich": "long", "keywords": "partial", "partial": "partial"}


def clip_fps(clip: Clip, n: int) -> float | None:
    """The rate a clip's ``n`` stored frames sample it at (n / its span, as from its mp4)."""
    return sampling_fps(n, (clip.end_ms - clip.start_ms) / 1000)


def _video_ref(clip: Clip, n: int) -> dict[str, Any]:
    """A clip as a pair side: its frames, their rate, and the source video and dedup cluster it
    belongs to (a consumer groups a hard negative like a positive without rebuilding the mapping)."""
    return {"video": {"clip_id": clip.id, "frames": frame_keys(clip.id, n), "fps": clip_fps(clip, n),
                      "video_id": clip.video_id, "dedup_cluster": clip.dedup_cluster or clip.id}}


_DESCRIPTIVE = ("fps", "video_id", "dedup_cluster")  # what a video ref says about its clip, not which clip


def _identity(side: dict[str, Any]) -> str:
    """A side as it names its content (without the fps, video id and dedup cluster it carries: pair
    ids stay those of before these were added)."""
    video = side.get("video")
    if isinstance(video, dict) and any(k in video for k in _DESCRIPTIVE):
        side = {**side, "video": {k: v for k, v in video.items() if k not in _DESCRIPTIVE}}
    return json.dumps(side, sort_keys=True)


def pairs_stage(video_id: str, hard_negatives: int) -> dict[str, Any]:
    n = get_settings().synth.frames_per_clip
    with session_scope() as db:
        video = db.get(Video, video_id)
        clips = db.scalars(select(Clip).where(Clip.video_id == video_id, clip_stored()).order_by(Clip.start_ms)).all()
        caps = db.scalars(select(Caption).where(Caption.target_id.in_([c.id for c in clips]))).all()
        others = db.scalars(select(Clip).where(Clip.video_id != video_id, clip_stored()).order_by(Clip.id).limit(256)).all()
        db.expunge_all()
    by_clip: dict[str, dict[str, Caption]] = {}
    for c in caps:
        by_clip.setdefault(c.target_id, {})[c.style] = c
    whole = {"video": {"clip_id": f"video:{video_id}", "frames": video_frame_keys(video_id, n),
                       "fps": sampling_fps(n, video.duration_s if video else None), "video_id": video_id}}
    rows: list[dict[str, Any]] = []

    def add(task: str, domain: str | None, clip: Clip, query: dict, target: dict) -> None:
        rng = random.Random(f"{task}|{clip.id}|{_identity(query)}")
        negs = [_video_ref(o, n) for o in rng.sample(others, min(hard_negatives, len(others)))] if task in ("T2V", "TI2V", "TV2V") else []
        rows.append({"id": stable_id(task, _identity(query), _identity(target)),
                     "task": task, "domain": domain, "video_id": video_id, "dedup_cluster": clip.dedup_cluster,
                     "query": query, "target": target, "hard_negatives": negs})

    for i, clip in enumerate(clips):
        cc = by_clip.get(clip.id, {})
        vref = _video_ref(clip, n)
        key_img = {"image": keyframe_key(clip.id)}
        for style, domain in DOMAIN_OF_STYLE.items():
            if style in cc:
                dom = {"spatial": "spatial", "temporal": "temporal"}.get(cc[style].info_profile, domain) if style == "rich" else domain
                add("T2V", dom, clip, {"text": cc[style].text}, vref)
        if "concise" in cc and "rich" in cc:
            add("T2T", "coarse", clip, {"text": cc["concise"].text}, {"text": cc["rich"].text})
        if "frame" in cc:
            add("T2I", "spatial", clip, {"text": cc["frame"].text}, key_img)
        add("I2V", "spatial", clip, key_img, vref)
        if "composed_image" in cc:
            add("TI2V", "temporal", clip, {"text": cc["composed_image"].text, **key_img}, vref)
        if "composed_video" in cc:
            target = _video_ref(clips[i + 1], n) if i + 1 < len(clips) else whole
            add("TV2V", "temporal", clip, {"text": cc["composed_video"].text, **vref}, target)
        add("V2V", "partial" if len(clips) > 1 else "coarse", clip, vref, whole)
    with session_scope() as db:
        upsert(db, Pair, rows)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["task"]] = counts.get(r["task"], 0) + 1
    return {"pairs": len(rows), "pairs_by_task": counts}
