"""Indexing: embed every kept clip (and every whole video, so a partially relevant query can
return the span) with a model version into a new Qdrant collection, in batches; resumable (points
already present are skipped)."""

from __future__ import annotations

import time
from typing import Any

from qdrant_client import models
from sqlalchemy import select

from services.indexer.collections import PAYLOAD_INDEXES, collection_name
from shared.db import init_db, session_scope, upsert
from shared.db.models import Caption, Clip, IndexVersion, Video
from shared.ids import stable_id
from shared.model import Embedder, EmbedInput, VideoFrames
from shared.vectors import get_qdrant

FRAMES = 8


def corpus_rows() -> list[dict[str, Any]]:
    """One row per kept clip and per video that has clips: id, frames, payload."""
    init_db()
    with session_scope() as s:
        clips = s.execute(select(Clip, Video).join(Video, Clip.video_id == Video.id)
                          .where(Clip.kept.is_(True)).order_by(Clip.id)).all()
        captions = {c.target_id: c.text for c in s.scalars(select(Caption).where(Caption.style == "concise"))}
        rows, videos = [], {}
        for clip, video in clips:
            rows.append({"id": clip.id, "frames": [f"{clip.frame_prefix}{i:02d}.jpg" for i in range(FRAMES)],
                         "payload": {"kind": "clip", "clip_id": clip.id, "video_id": video.id, "video": video.uri,
                                     "source": video.source_id, "start_ms": clip.start_ms, "end_ms": clip.end_ms,
                                     "duration_s": (clip.end_ms - clip.start_ms) / 1000, "caption": captions.get(clip.id, ""),
                                     "thumbnail_key": f"clips/{clip.id}/key/00.jpg", "object_key": clip.object_key,
                                     "dataset": "synth"}})
            videos[video.id] = video
        for vid, video in videos.items():
            rows.append({"id": stable_id("video-point", vid), "frames": [f"videos/{vid}/frames/{i:02d}.jpg" for i in range(FRAMES)],
                         "payload": {"kind": "video", "clip_id": None, "video_id": vid, "video": video.uri, "source": video.source_id,
                                     "start_ms": 0, "end_ms": int((video.duration_s or 0) * 1000), "duration_s": video.duration_s or 0,
                                     "caption": (video.raw_caption or "")[:300], "thumbnail_key": f"videos/{vid}/frames/04.jpg",
                                     "object_key": None, "dataset": "synth"}})
    return rows


def build_index(model: str | None = None, adapter: str | None = None, version: str | None = None,
                batch_size: int = 64, embedder: Embedder | None = None, progress=None, client=None) -> dict[str, Any]:  # noqa: ANN001
    """``client``: an open Qdrant client to use (Qdrant local mode allows one per process)."""
    t0 = time.perf_counter()
    embedder = embedder or Embedder(model, adapter)
    own_client = client is None
    client = client or get_qdrant()
    version = version or collection_name(embedder.model_id)
    if not client.collection_exists(version):
        client.create_collection(version, vectors_config=models.VectorParams(size=embedder.dim, distance=models.Distance.COSINE))
        for field, schema in PAYLOAD_INDEXES.items():
            client.create_payload_index(version, field, schema)
    with session_scope() as s:
        upsert(s, IndexVersion, [{"id": version, "model": embedder.name_or_path, "adapter": embedder.adapter, "state": "building"}],
               update=["state"])
    rows = corpus_rows()
    if not rows:
        raise ValueError("nothing to index: no kept clips (run a synthesis job first)")
    present = set()
    offset = None
    while True:  # resumable: skip points already there
        points, offset = client.scroll(version, limit=1024, offset=offset, with_payload=False, with_vectors=False)
        present.update(str(p.id) for p in points)
        if offset is None:
            break
    todo = [r for r in rows if r["id"] not in present]
    for i in range(0, len(todo), batch_size):
        chunk = todo[i : i + batch_size]
        vecs = embedder.embed([EmbedInput(video=VideoFrames(r["frames"])) for r in chunk])
        client.upsert(version, points=models.Batch(ids=[r["id"] for r in chunk], vectors=vecs.tolist(),
                                                   payloads=[r["payload"] for r in chunk]), wait=True)
        if progress:
            progress(min(i + batch_size, len(todo)), len(todo))
    count = client.count(version, exact=True).count
    with session_scope() as s:
        row = s.get(IndexVersion, version)
        row.points, row.state = count, "ready"
    if own_client:
        client.close()
    return {"version": version, "points": count, "expected": len(rows), "embedded": len(todo),
            "model_id": embedder.model_id, "wall_seconds": round(time.perf_counter() - t0, 2)}
