"""Near-duplicate removal across videos: a moving clip is claimed (recorded, provisionally kept),
uploaded, then finalized (made stored) unless a stored clip of another video lies within
``synth.dedup_hamming`` bits of its perceptual hash. Duplicates are only ever judged against
stored clips, so a clip whose upload fails takes no other clip down with it."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select, text, update

from services.synth import objects
from shared import layout
from shared.db import session_scope, upsert
from shared.db.models import Clip, clip_stored, utcnow
from shared.media.analysis import hamming

log = logging.getLogger(__name__)


def serialise(db) -> None:  # noqa: ANN001
    """Take the synthesis lock for the rest of ``db``'s transaction: the dedup checks with the rows
    they write, and the garbage collector's check-then-delete, run one at a time across workers
    (an advisory lock on PostgreSQL; SQLite's write lock, taken by a write that changes nothing)."""
    dialect = db.get_bind().dialect.name
    if dialect == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(727272)"))
    elif dialect == "sqlite":
        db.execute(text("UPDATE clips SET id = id WHERE 0"))


def find_duplicate(db, ph: str, video_id: str, max_bits: int) -> str | None:  # noqa: ANN001
    """A stored clip of another video within ``max_bits`` of ``ph``; takes the synthesis lock first,
    so the caller's writes in the same transaction are serialised with every other check."""
    serialise(db)
    rows = db.execute(select(Clip.id, Clip.phash).where(clip_stored(), Clip.video_id != video_id,
                                                        Clip.phash.is_not(None)).order_by(Clip.id)).all()
    for cid, other in rows:
        if hamming(ph, other) <= max_bits:
            return cid
    return None


def clip_row(cand: dict[str, Any], video_id: str, dup_of: str | None) -> dict[str, Any]:
    cid, kept = cand["id"], cand["reason"] is None
    return {"id": cid, "video_id": video_id, "start_ms": int(cand["start"] * 1000),
            "end_ms": int(cand["end"] * 1000), "phash": cand["phash"],
            "filter_scores": {"motion": round(cand["motion"], 3)}, "kept": kept,
            "reject_reason": cand["reason"], "dedup_cluster": dup_of or cid, "claimed_at": utcnow(),
            "object_key": layout.clip_key(cid) if kept else None,
            "frame_prefix": layout.clip_frame_prefix(cid) if kept else None}


def save_rejected(cand: dict[str, Any], video_id: str) -> None:
    with session_scope() as db:
        upsert(db, Clip, [clip_row(cand, video_id, None)])


def claim_clip(cand: dict[str, Any], video_id: str, max_bits: int) -> bool:
    """Record a moving clip: kept (provisionally: until ``finalize_clip`` its objects are not
    stored), or a near-duplicate of a **stored** clip of another video."""
    with session_scope() as db:
        dup_of = find_duplicate(db, cand["phash"], video_id, max_bits)
        if dup_of:
            cand["reason"] = f"near-duplicate of clip {dup_of}"
        upsert(db, Clip, [clip_row(cand, video_id, dup_of)])
    return dup_of is None


def finalize_clip(store, cand: dict[str, Any], video_id: str, max_bits: int) -> bool:  # noqa: ANN001
    """After the uploads: the clip becomes stored (its Frame rows), unless a duplicate of another
    video became stored while it was uploading; the check and the Frame rows share one transaction
    under the lock, so of two duplicates in flight at once exactly the first to finish is kept. The
    other stops being kept, with the reason, and its objects go (a failed delete leaves the row's
    ``object_key`` set, for ``univr synth gc``). Returns whether the clip is kept."""
    from shared.db.models import Frame

    cid = cand["id"]
    with session_scope() as db:
        dup_of = find_duplicate(db, cand["phash"], video_id, max_bits)
        if dup_of is None:
            upsert(db, Frame, objects.frame_rows(cand))
            return True
        cand["reason"] = f"near-duplicate of clip {dup_of}"
        db.execute(update(Clip).where(Clip.id == cid).values(
            kept=False, reject_reason=cand["reason"], dedup_cluster=dup_of))
    try:
        objects.remove_objects(store, [cid])
    except Exception:  # noqa: BLE001 - the object_key left on the row marks them for the gc
        log.warning("clip %s: objects of a near-duplicate could not be deleted", cid, exc_info=True)
    return False
