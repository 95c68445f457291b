"""Garbage collection of the synthesis objects in the store (`univr synth gc`).

Synthesis writes under ``clips/<clip_id>/`` (mp4, frames, keyframe) and ``videos/<video_id>/``
(the whole video's frames). An object there is live when a row needs it:

- ``clips/<id>/...``: the clip is stored (kept, with its Frame rows: ``clip_stored``);
- ``videos/<id>/...``: the video is ``ok``, or a pair names it (a whole-video ref).

and, whatever the rows say, everything a dataset snapshot in the store names (its clips' frames,
keyframes and whole-video frames: a snapshot may have been written without rows, e.g. imported).

Everything else is garbage: what a clip whose upload failed (and whose cleanup failed too: its row
keeps ``object_key``) left behind, a clip that lost the dedup race or the consistency filter but
whose delete failed, a worker killed mid-upload whose item then failed for good, the frames of a
video whose clips were all rejected. Those rows' marks (``object_key``, ``frame_prefix``) are
cleared as their objects go.

Safe beside a job writing at the same moment: nothing newer than ``synth.gc_grace_s`` is touched
(neither objects nor clips claimed since), and each clip or video is re-checked and deleted under
the lock of that clip or video (``dedup.lock_clip``, ``dedup.lock_video``) that a worker takes to
claim a clip or to mark a video ``ok`` before uploading anything for it. An attempt lasts at most
``broker.hard_time_limit_s``, so with a grace period above that no upload can be in flight for what
is deleted.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, not_, select

from services.synth.dedup import lock_clip, lock_video
from shared import layout
from shared.config import get_settings
from shared.contracts.snapshot import SnapshotManifest
from shared.db import init_db, session_scope
from shared.db.models import Clip, ClipHashBand, Frame, Pair, Video, clip_stored, utcnow
from shared.snapshots import iter_rows
from shared.storage import ObjectInfo, get_store

log = logging.getLogger(__name__)
NEVER_STORED = "its objects were never all stored (garbage-collected)"
CHECK_BATCH = 1000  # listed owners checked against the rows per query


def _aware(t: datetime | None) -> datetime | None:
    return (
        t.replace(tzinfo=UTC) if t is not None and t.tzinfo is None else t
    )  # SQLite drops the zone


def _owners(store, prefix: str) -> tuple[dict[str, list[ObjectInfo]], int]:  # noqa: ANN001
    """Objects under ``prefix`` by owner id (the key's second part), and how many were listed."""
    out: dict[str, list[ObjectInfo]] = defaultdict(list)
    n = 0
    for info in store.list_info(prefix):
        n += 1
        parts = info.key.split("/")
        if len(parts) >= 3:  # <prefix>/<owner id>/<name>: other layouts are not ours to judge
            out[parts[1]].append(info)
    return out, n


def collect_garbage(*, dry_run: bool = False, grace_s: float | None = None) -> dict[str, Any]:
    """Delete (``dry_run``: count) the synthesis objects no row needs; see the module docstring.
    Returns the counts a user reads."""
    init_db()
    grace = get_settings().synth.gc_grace_s if grace_s is None else grace_s
    cutoff = utcnow() - timedelta(seconds=grace)
    store = get_store()
    clips, n_clip_objects = _owners(store, layout.CLIPS)
    videos, n_video_objects = _owners(store, layout.VIDEOS)
    # read after listing (a clip stored since it was listed counts as stored), by batches of the
    # listed owners: no load of every stored clip, video or pair
    clip_candidates = _not_stored(set(clips)) | _marked()
    video_candidates = _not_live(set(videos))
    report: dict[str, Any] = {
        "dry_run": dry_run,
        "grace_s": grace,
        "scanned": n_clip_objects + n_video_objects,
        "objects_deleted": 0,
        "bytes_deleted": 0,
        "clips": 0,
        "videos": 0,
        "rows_unmarked": 0,
        "skipped_recent": 0,
        "kept_for_snapshots": 0,
        "errors": [],
    }
    if (
        clip_candidates or video_candidates
    ):  # read the snapshots only when there is something to collect
        named = snapshot_owners(store)
        report["kept_for_snapshots"] = len(clip_candidates & named) + len(video_candidates & named)
        clip_candidates -= named
        video_candidates -= named
    for cid in sorted(clip_candidates):
        try:
            _collect_clip(store, cid, clips.get(cid, []), cutoff, dry_run, report)
        except Exception as exc:  # noqa: BLE001 - one clip's failure must not stop the others
            log.warning("gc: clip %s", cid, exc_info=True)
            report["errors"].append(f"clip {cid}: {type(exc).__name__}: {exc}"[:300])
    for vid in sorted(video_candidates):
        try:
            _collect_video(store, vid, videos[vid], cutoff, dry_run, report)
        except Exception as exc:  # noqa: BLE001
            log.warning("gc: video %s", vid, exc_info=True)
            report["errors"].append(f"video {vid}: {type(exc).__name__}: {exc}"[:300])
    log.info("gc: %s", report)
    return report


def _batches(ids: set[str]) -> list[list[str]]:
    ordered = sorted(ids)
    return [ordered[i : i + CHECK_BATCH] for i in range(0, len(ordered), CHECK_BATCH)]


def _not_stored(ids: set[str]) -> set[str]:
    out = set()
    for chunk in _batches(ids):
        with session_scope() as db:
            out |= set(chunk) - set(
                db.scalars(select(Clip.id).where(Clip.id.in_(chunk), clip_stored()))
            )
    return out


def _marked() -> set[str]:
    """Clips not stored whose row still marks objects (read from a cursor, in pages)."""
    with session_scope() as db:
        q = select(Clip.id).where(Clip.object_key.is_not(None), not_(clip_stored()))
        return set(db.scalars(q.execution_options(yield_per=CHECK_BATCH)))


def _not_live(ids: set[str]) -> set[str]:
    out = set()
    for chunk in _batches(ids):
        with session_scope() as db:
            live = set(
                db.scalars(select(Video.id).where(Video.id.in_(chunk), Video.status == "ok"))
            )
            live |= set(
                db.scalars(select(Pair.video_id).where(Pair.video_id.in_(chunk)).distinct())
            )
        out |= set(chunk) - live
    return out


def snapshot_owners(store) -> set[str]:  # noqa: ANN001
    """The clip and video ids whose objects some snapshot in the store names (``clips/<id>/...`` and
    ``videos/<id>/...`` keys of any side, clip ids, ``video:<id>`` refs). A snapshot that cannot be
    read raises: what it protects is unknown, so nothing may be collected."""
    owners: set[str] = set()

    def add_key(key: Any) -> None:
        owner = layout.owner_of(key)
        if owner:
            owners.add(owner)

    for key in store.list(layout.SNAPSHOTS):
        if not layout.is_manifest_key(key):
            continue
        manifest = json.loads(store.get_bytes(key))
        if not manifest.get("pairs_key") and not manifest.get("shards"):
            continue  # names no pairs
        for pair in iter_rows(store, SnapshotManifest.model_validate(manifest)):  # shard by shard
            for side in [
                pair.get("query"),
                pair.get("target"),
                *(pair.get("hard_negatives") or []),
            ]:
                if not isinstance(side, dict):
                    continue
                add_key(side.get("image"))
                video = side.get("video")
                if isinstance(video, dict):
                    owners.add(layout.ref_owner(str(video.get("clip_id") or "")))
                    for frame in video.get("frames") or []:
                        add_key(frame)
    return owners


def _recent(objects: list[ObjectInfo], cutoff: datetime, *times: datetime | None) -> bool:
    stamps = [o.modified for o in objects] + [t for t in map(_aware, times) if t is not None]
    return any(t > cutoff for t in stamps)


def _collect_clip(
    store,
    cid: str,
    objects: list[ObjectInfo],
    cutoff: datetime,
    dry_run: bool,  # noqa: ANN001
    report: dict[str, Any],
) -> None:
    with session_scope() as db:
        if not dry_run:
            lock_clip(
                db, cid
            )  # no claim of this clip until its objects are gone and the row says so
        row = db.get(Clip, cid)
        if row is not None and row.kept and db.scalar(select(exists().where(Frame.clip_id == cid))):
            return  # stored since the listing
        if _recent(objects, cutoff, row.claimed_at if row is not None else None):
            report["skipped_recent"] += 1
            return
        size = sum(o.size for o in objects)
        had_mark = row is not None and (
            row.object_key is not None or row.frame_prefix is not None or row.kept
        )
        if not dry_run:
            db.execute(
                delete(Frame).where(Frame.clip_id == cid)
            )  # none on a clip not stored, normally
            db.execute(delete(ClipHashBand).where(ClipHashBand.clip_id == cid))
            n = store.delete_prefix(layout.clip_prefix(cid))
            if row is not None:
                row.object_key = row.frame_prefix = None
                if row.kept:  # claimed long ago and never stored: that attempt is over
                    row.kept, row.reject_reason = False, NEVER_STORED
        else:
            n = len(objects)
        report["rows_unmarked"] += had_mark
    if n:
        report["clips"] += 1
    report["objects_deleted"] += n
    report["bytes_deleted"] += size


def _collect_video(
    store,
    vid: str,
    objects: list[ObjectInfo],
    cutoff: datetime,
    dry_run: bool,  # noqa: ANN001
    report: dict[str, Any],
) -> None:
    with session_scope() as db:
        if not dry_run:
            lock_video(db, vid)  # a media stage marks its video ok under this lock before uploading
        video = db.get(Video, vid)
        if (video is not None and video.status == "ok") or db.scalar(
            select(exists().where(Pair.video_id == vid))
        ):
            return
        if _recent(objects, cutoff):
            report["skipped_recent"] += 1
            return
        keys = [o for o in objects if video is None or o.key != video.object_key]
        if not dry_run:
            for o in keys:
                store.delete(o.key)
    if keys:
        report["videos"] += 1
    report["objects_deleted"] += len(keys)
    report["bytes_deleted"] += sum(o.size for o in keys)
