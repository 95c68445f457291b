"""Near-duplicate removal across videos, indexed and without a lock shared by the cluster.

A moving clip is claimed (recorded, provisionally kept), uploaded, then finalized (made stored)
unless a stored clip of another video lies within ``synth.dedup_hamming`` bits of its perceptual
hash. Duplicates are only ever judged against stored clips, so a clip whose upload fails takes no
other clip down with it.

The lookup is multi-index hashing (``shared.db.hash_bands``): a stored clip's pHash is cut into
``max_bits + 1`` bands stored as indexed rows, so every hash within ``max_bits`` shares at least
one band value with the query; the few clips sharing one are verified exactly. Finalizing locks
only the band buckets of its own hash (``shared.db.locks``): two near-duplicates share a bucket
and so finalize one after the other (the first to finish is kept, the other sees it stored), while
clips with nothing in common never wait for each other. The locks are held for the check and one
write only (band rows before, no WAL flush waited for under them).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    and_,
    cast,
    column,
    delete,
    func,
    or_,
    select,
    text,
    update,
    values,
)
from sqlalchemy.dialects.postgresql import BIT

from services.synth import objects
from shared import layout
from shared.db import session_scope, upsert
from shared.db.hash_bands import HASH_BITS, band_rows, bands, n_bands, signed
from shared.db.locks import lock_names
from shared.db.models import Clip, ClipHashBand, Frame, clip_stored, utcnow
from shared.media.analysis import hamming

log = logging.getLogger(__name__)
REINDEX_BATCH = 2_000  # clips per page (5 band rows each: under the 65535 parameters)


def lock_clip(db, clip_id: str) -> None:  # noqa: ANN001
    """Serialise one clip's claim with the garbage collector's check-then-delete of its objects."""
    lock_names(db, [f"clip:{clip_id}"])


def lock_video(db, video_id: str) -> None:  # noqa: ANN001
    """Serialise a video's ``ok`` mark with the garbage collector's check-then-delete."""
    lock_names(db, [f"video-row:{video_id}"])


def lock_buckets(db, ph: str, max_bits: int) -> None:  # noqa: ANN001
    """Lock the band buckets of ``ph``: every near-duplicate finalizing now holds one of them."""
    n = n_bands(max_bits)
    lock_names(db, [f"phash:{n}:{b}:{v}" for b, v in bands(ph, n)])


def unlocked_commit(db) -> None:  # noqa: ANN001
    """PostgreSQL: this transaction's commit releases its locks without waiting for the WAL flush
    (``synchronous_commit = off``, this transaction only), so the bucket locks are not held over
    a disk write. Nothing is lost that anyone relied on: a crash can only lose the last fraction
    of a second of such commits, and any later (synchronous) commit that saw this one flushes it
    first (the WAL is flushed in order); a finalize lost that way leaves a clip claimed and never
    stored, which the item's retry or ``univr synth gc`` settles, as after a worker killed
    mid-finalize."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SET LOCAL synchronous_commit = off"))


def _near(ph: str, max_bits: int, exact_in_sql: bool):  # noqa: ANN202
    """The band rows sharing a band with ``ph``, and on PostgreSQL only those within ``max_bits``
    (``bit_count`` of the XOR, on the row: no clip is read).

    PostgreSQL: the query's buckets are a VALUES list joined to the band rows, so each bucket is
    one index-only scan of the covering index (``ix_clip_hash_bands_lookup``: the hash and clip id
    are in the index). An OR of the buckets made the planner OR bitmaps of the primary key and then
    read one random heap page per band row (~600 at 10⁶ stored clips: the lookup grew with N).
    Elsewhere (SQLite has no column list on a VALUES alias) an OR of indexed equalities."""
    n = n_bands(max_bits)
    if not exact_in_sql:
        same_band = or_(
            *[and_(ClipHashBand.band == b, ClipHashBand.value == v) for b, v in bands(ph, n)]
        )
        return select(ClipHashBand.clip_id).where(ClipHashBand.scheme == n, same_band)
    probe = values(column("band", Integer), column("value", BigInteger), name="probe").data(
        bands(ph, n)
    )
    xor = ClipHashBand.hash.op("#")(signed(int(ph, 16)))
    return (
        select(ClipHashBand.clip_id)
        .join(
            probe,
            and_(
                ClipHashBand.scheme == n,
                ClipHashBand.band == probe.c.band,
                ClipHashBand.value == probe.c.value,
            ),
        )
        .where(func.bit_count(cast(xor, BIT(HASH_BITS))) <= max_bits)
    )


def find_duplicate(db, ph: str, video_id: str, max_bits: int) -> str | None:  # noqa: ANN001
    """The first (by id) stored clip of another video within ``max_bits`` of ``ph``, or None:
    the same answer as comparing with every stored clip, from the band index's candidates
    (verified exactly: in SQL on PostgreSQL, here on the few candidates elsewhere)."""
    in_sql = db.get_bind().dialect.name == "postgresql"
    near = _near(ph, max_bits, in_sql).cte("near")  # the few band matches first: no walk of clips
    q = (
        select(Clip.id, Clip.phash)
        .join(near, near.c.clip_id == Clip.id)
        .where(Clip.video_id != video_id, Clip.phash.is_not(None), clip_stored())
    )
    # the first by id, chosen here: an ORDER BY id LIMIT 1 lets the planner walk the clips' index
    close = {cid for cid, other in db.execute(q) if in_sql or hamming(ph, other) <= max_bits}
    return min(close) if close else None


def _frames_unless_duplicate(db, cand: dict[str, Any], video_id: str, max_bits: int) -> bool:  # noqa: ANN001
    """Write the clip's Frame rows (it becomes stored) unless a stored clip of another video lies
    within ``max_bits``; whether they were written. On PostgreSQL the check and the write are one
    statement (``INSERT … SELECT … WHERE NOT EXISTS``), compiled before the bucket locks are
    taken: one round trip under them."""
    rows = objects.frame_rows(cand)
    if db.get_bind().dialect.name != "postgresql":
        lock_buckets(db, cand["phash"], max_bits)
        if find_duplicate(db, cand["phash"], video_id, max_bits) is not None:
            return False
        upsert(db, Frame, rows)
        return True
    from sqlalchemy import exists
    from sqlalchemy.dialects.postgresql import insert

    near = _near(cand["phash"], max_bits, exact_in_sql=True).subquery("near")
    duplicate = exists().where(
        near.c.clip_id == Clip.id,
        Clip.video_id != video_id,
        Clip.phash.is_not(None),
        clip_stored(),
    )
    cols = [c.name for c in Frame.__table__.columns if c.name in rows[0]]
    given = values(*[column(c, Frame.__table__.c[c].type) for c in cols], name="given").data(
        [tuple(r[c] for c in cols) for r in rows]
    )
    stmt = insert(Frame).from_select(cols, select(given).where(~duplicate))
    stmt = stmt.on_conflict_do_update(
        index_elements=["id"], set_={c: stmt.excluded[c] for c in cols if c != "id"}
    )
    compiled = stmt.returning(Frame.id).compile(dialect=db.get_bind().dialect)
    lock_buckets(db, cand["phash"], max_bits)
    return bool(db.connection().exec_driver_sql(str(compiled), compiled.params).all())


def clip_row(cand: dict[str, Any], video_id: str, dup_of: str | None) -> dict[str, Any]:
    cid, kept = cand["id"], cand["reason"] is None
    return {
        "id": cid,
        "video_id": video_id,
        "start_ms": int(cand["start"] * 1000),
        "end_ms": int(cand["end"] * 1000),
        "phash": cand["phash"],
        "filter_scores": {"motion": round(cand["motion"], 3)},
        "kept": kept,
        "reject_reason": cand["reason"],
        "dedup_cluster": dup_of or cid,
        "claimed_at": utcnow(),
        "object_key": layout.clip_key(cid) if kept else None,
        "frame_prefix": layout.clip_frame_prefix(cid) if kept else None,
    }


def save_rejected(cand: dict[str, Any], video_id: str) -> None:
    with session_scope() as db:
        upsert(db, Clip, [clip_row(cand, video_id, None)])


def claim_clip(cand: dict[str, Any], video_id: str, max_bits: int) -> bool:
    """Record a moving clip: kept (provisionally: until ``finalize_clip`` its objects are not
    stored), or a near-duplicate of a **stored** clip of another video (then nothing is uploaded).
    No bucket lock: a duplicate stored meanwhile is caught when finalizing."""
    with session_scope() as db:
        lock_clip(db, cand["id"])
        dup_of = find_duplicate(db, cand["phash"], video_id, max_bits)
        if dup_of:
            cand["reason"] = f"near-duplicate of clip {dup_of}"
        upsert(db, Clip, [clip_row(cand, video_id, dup_of)])
    return dup_of is None


def finalize_clip(store, cand: dict[str, Any], video_id: str, max_bits: int) -> bool:  # noqa: ANN001
    """After the uploads: the clip becomes stored (its Frame rows), unless a duplicate of another
    video became stored while it was uploading; the check and the Frame rows share one
    transaction under the locks of the clip's band buckets, so of two duplicates in flight at once
    exactly the first to finish is kept. The other stops being kept, with the reason, and its
    objects go (a failed delete leaves the row's ``object_key`` set, for ``univr synth gc``).
    Returns whether the clip is kept.

    The locks are held briefly (``unlocked_commit``): the band rows are written before, in a
    transaction of their own (a clip without Frame rows is not stored, so no lookup counts them
    yet), and the locked transaction commits without waiting for its WAL flush."""
    cid, ph = cand["id"], cand["phash"]
    with session_scope() as db:
        upsert(
            db,
            ClipHashBand,
            band_rows(cid, ph, n_bands(max_bits)),
            update=[],
            key=("scheme", "band", "value", "clip_id"),
        )
    with session_scope() as db:
        unlocked_commit(db)
        if _frames_unless_duplicate(db, cand, video_id, max_bits):
            return True
        dup_of = find_duplicate(db, ph, video_id, max_bits)  # the one that stopped the write
        cand["reason"] = f"near-duplicate of clip {dup_of}"
        db.execute(
            update(Clip)
            .where(Clip.id == cid)
            .values(kept=False, reject_reason=cand["reason"], dedup_cluster=dup_of)
        )
    try:
        objects.remove_objects(store, [cid])
    except Exception:  # noqa: BLE001 - the object_key left on the row marks them for the gc
        log.warning("clip %s: objects of a near-duplicate could not be deleted", cid, exc_info=True)
    return False


def reindex(max_bits: int) -> int:
    """Band rows of every stored clip for ``max_bits`` (after ``synth.dedup_hamming`` changed:
    the index holds one band layout per threshold), in keyset pages. Returns the clips indexed."""
    n, last, total = n_bands(max_bits), "", 0
    while True:
        with session_scope() as db:
            page = db.execute(
                select(Clip.id, Clip.phash)
                .where(Clip.id > last, Clip.phash.is_not(None), clip_stored())
                .order_by(Clip.id)
                .limit(REINDEX_BATCH)
            ).all()
            if not page:
                return total
            db.execute(
                delete(ClipHashBand).where(
                    ClipHashBand.scheme == n, ClipHashBand.clip_id.in_([c for c, _ in page])
                )
            )
            upsert(
                db,
                ClipHashBand,
                [r for cid, ph in page if ph is not None for r in band_rows(cid, ph, n)],
                key=("scheme", "band", "value", "clip_id"),
                update=[],
            )
        last, total = page[-1][0], total + len(page)
