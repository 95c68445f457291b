"""The corpus a build embeds: one point per kept clip whose objects are stored and one per video
that has such clips (so a partially relevant query can return the span), each with its frames, the
rate they sample it at (``fps``, SPEC §6.3) and its payload; optionally
only the clips of one source (id or URI) or of one dataset (a snapshot, by name or id)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import or_, select

from shared import layout
from shared.config import get_settings
from shared.db import init_db, session_scope
from shared.db.models import Caption, Clip, Snapshot, Source, Video, clip_stored
from shared.ids import stable_id
from shared.media.frames import sampling_fps
from shared.snapshots import iter_rows, read_manifest, side_refs
from shared.storage import get_store

PAGE = 1000  # clips read from the cursor at a time


def video_point_id(video_id: str) -> str:
    return stable_id("video-point", video_id)


def snapshot_members() -> dict[str, set[tuple[str, str]]]:
    """clip id or ``video:<id>`` → {(snapshot id, snapshot name)} for every snapshot whose pairs use
    it."""
    with session_scope() as s:
        snaps = [(r.id, r.name, r.manifest_key) for r in s.scalars(select(Snapshot))]
    store = get_store()
    members: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for sid, name, manifest_key in snaps:
        for pair in iter_rows(store, read_manifest(store, key=manifest_key)):  # shard by shard
            for ref in side_refs(pair):
                members[ref].add((sid, name))
    return members


def _store_key(uri: str | None) -> str | None:
    """The object key of a source video that lies in the configured bucket (else it has no URL)."""
    prefix = f"s3://{get_settings().storage.bucket}/"
    return uri[len(prefix) :] if uri and uri.startswith(prefix) else None


def _payload_sets(refs: set[tuple[str, str]]) -> dict[str, list[str]]:
    return {"dataset": sorted({n for _, n in refs}), "snapshot": sorted({i for i, _ in refs})}


def _pages(s, q):  # noqa: ANN001, ANN202
    """(clip, video, source, concise captions of the page) from a cursor, a page at a time: the
    captions are read for each page's clips, never all of them at once."""
    for page in s.execute(q.execution_options(yield_per=PAGE)).partitions():
        ids = [clip.id for clip, _, _ in page]
        captions = dict(
            s.execute(
                select(Caption.target_id, Caption.text).where(
                    Caption.style == "concise", Caption.target_id.in_(ids)
                )
            ).all()
        )
        for clip, video, src in page:
            yield clip, video, src, captions


def _clip_row(
    clip: Clip,
    video: Video,
    src: Source | None,
    captions: dict[str, str],
    refs: set[tuple[str, str]],
    frames: int,
) -> dict[str, Any]:
    """A clip's point: its stored frames and payload."""
    assert clip.frame_prefix is not None  # a stored clip has its frames (clip_stored)
    return {
        "id": clip.id,
        "frames": [layout.frame_key(clip.frame_prefix, i) for i in range(frames)],
        "fps": sampling_fps(frames, (clip.end_ms - clip.start_ms) / 1000),
        "payload": {
            "kind": "clip",
            "clip_id": clip.id,
            "video_id": video.id,
            "video": video.uri,
            "source": video.source_id,
            "source_uri": src.uri if src else None,
            "start_ms": clip.start_ms,
            "end_ms": clip.end_ms,
            "duration_s": (clip.end_ms - clip.start_ms) / 1000,
            "caption": captions.get(clip.id, ""),
            "thumbnail_key": layout.thumbnail_key("clip", clip.id, frames),
            "object_key": clip.object_key,
            **_payload_sets(refs),
        },
    }


def _video_row(
    vid: str, video: Video, src: Source | None, refs: set[tuple[str, str]], frames: int
) -> dict[str, Any]:
    """A whole video's point: its frames sampled over the video, and payload."""
    return {
        "id": video_point_id(vid),
        "frames": layout.video_frame_keys(vid, frames),
        "fps": sampling_fps(frames, video.duration_s),
        "payload": {
            "kind": "video",
            "clip_id": None,
            "video_id": vid,
            "video": video.uri,
            "source": video.source_id,
            "source_uri": src.uri if src else None,
            "start_ms": 0,
            "end_ms": int((video.duration_s or 0) * 1000),
            "duration_s": video.duration_s or 0,
            "caption": (video.raw_caption or "")[:300],
            "thumbnail_key": layout.thumbnail_key("video", vid, frames),
            "object_key": video.object_key or _store_key(video.uri),
            **_payload_sets(refs),
        },
    }


def corpus_rows(
    source: str | None = None, dataset: str | None = None, frames: int | None = None
) -> list[dict[str, Any]]:
    """Rows ``{"id", "frames", "fps", "payload"}``; raises ValueError for an unknown source or
    dataset."""
    init_db()
    frames = frames or get_settings().synth.frames_per_clip
    members = snapshot_members()
    with session_scope() as s:
        q = (
            select(Clip, Video, Source)
            .join(Video, Clip.video_id == Video.id)
            .outerjoin(Source, Video.source_id == Source.id)
            .where(clip_stored())
            .order_by(Clip.id)
        )
        if source:
            if (
                s.scalars(
                    select(Source.id).where(or_(Source.id == source, Source.uri == source))
                ).first()
                is None
            ):
                raise ValueError(f"no source {source!r} (give a source id or its URI)")
            q = q.where(or_(Source.id == source, Source.uri == source))
        wanted: set[str] | None = None
        if dataset:
            if (
                s.scalars(
                    select(Snapshot.id).where(or_(Snapshot.id == dataset, Snapshot.name == dataset))
                ).first()
                is None
            ):
                raise ValueError(f"no dataset {dataset!r} (give a snapshot name or id)")
            wanted = {
                ref for ref, snaps in members.items() if any(dataset in pair for pair in snaps)
            }
        rows: list[dict[str, Any]] = []
        videos: dict[str, tuple[Video, Source | None, set[tuple[str, str]]]] = {}
        for clip, video, src, captions in _pages(s, q):
            if (
                wanted is not None
                and clip.id not in wanted
                and layout.video_ref(video.id) not in wanted
            ):
                continue
            refs = members.get(clip.id, set())
            rows.append(_clip_row(clip, video, src, captions, refs, frames))
            _, _, seen = videos.setdefault(video.id, (video, src, set()))
            seen |= refs
        for vid, (video, src, refs) in videos.items():
            refs = refs | members.get(layout.video_ref(vid), set())
            rows.append(_video_row(vid, video, src, refs, frames))
    return rows
