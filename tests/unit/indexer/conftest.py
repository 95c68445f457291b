"""A small synthesized corpus written straight into the database and store (no media work), a fake
embedder with the Embedder's interface, and an in-memory Qdrant client."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field

import numpy as np
import pytest

from shared.ids import clip_id, stable_id


@dataclass
class FakeEmbedder:
    """Deterministic vectors from the first frame key (or the text), the same in every process
    (seeded by CRC-32, not by Python's per-process salted ``hash``); can be told to fail after some
    batches."""

    model_id: str = "tiny-0123456789abcdef-cafebabe"
    dim: int = 8
    name_or_path: str = "/models/tiny"
    adapter: str | None = None
    fail_after_batches: int | None = None
    batches: list[int] = field(default_factory=list)

    @property
    def identity(self) -> dict[str, str]:
        """What the model id stands for, as ``Embedder.identity`` gives it (the indexer logs it)."""
        return {"base": self.name_or_path, "adapter": self.adapter or "", "recipe": "fake"}

    def embed(self, items):  # noqa: ANN001, ANN201
        if self.fail_after_batches is not None and len(self.batches) >= self.fail_after_batches:
            raise RuntimeError("interrupted")
        self.batches.append(len(items))
        out = []
        for it in items:
            key = it.video.keys[0] if it.video is not None else (it.text or "")
            v = (
                np.random.default_rng(zlib.crc32(key.encode()))
                .normal(size=self.dim)
                .astype(np.float32)
            )
            out.append(v / np.linalg.norm(v))
        return np.stack(out)


@pytest.fixture
def corpus(univr_home):
    """Two sources (one S3, one directory), three videos, five kept clips (with their Frame rows:
    the objects are stored) and one rejected clip, one snapshot ("mini") that uses the clips of the
    first video and the whole second video."""
    from shared.db import init_db, session_scope, upsert
    from shared.db.models import Caption, Clip, Frame, Snapshot, Source, Video
    from shared.storage import get_store

    init_db()
    sources = [
        {"id": stable_id("s3://univr/raw/"), "uri": "s3://univr/raw/", "kind": "s3"},
        {"id": stable_id("/data/home-videos"), "uri": "/data/home-videos", "kind": "directory"},
    ]
    videos = [
        {
            "id": stable_id("v", i),
            "source_id": sources[0 if i < 2 else 1]["id"],
            "uri": f"s3://univr/raw/v{i}.mp4" if i < 2 else f"/data/home-videos/v{i}.mp4",
            "raw_caption": f"video {i}",
            "duration_s": 6.0,
            "status": "ok",
        }
        for i in range(3)
    ]
    clips = []
    for v, spans in zip(
        videos,
        [[(0, 2000), (2000, 6000)], [(0, 3000)], [(0, 1000), (1000, 6000), (500, 900)]],
        strict=True,
    ):
        for j, (a, b) in enumerate(spans):
            cid = clip_id(v["uri"], a, b)
            kept = not (v is videos[2] and j == 2)
            clips.append(
                {
                    "id": cid,
                    "video_id": v["id"],
                    "start_ms": a,
                    "end_ms": b,
                    "kept": kept,
                    "object_key": f"clips/{cid}/clip.mp4" if kept else None,
                    "frame_prefix": f"clips/{cid}/frames/" if kept else None,
                }
            )
    store = get_store()
    first = [c["id"] for c in clips if c["video_id"] == videos[0]["id"]]
    pairs = [
        {
            "id": "p1",
            "task": "T2V",
            "query": {"text": "q"},
            "target": {"video": {"clip_id": first[0], "frames": []}},
            "hard_negatives": [{"video": {"clip_id": first[1], "frames": []}}],
        },
        {
            "id": "p2",
            "task": "T2V",
            "query": {"text": "q"},
            "target": {"video": {"clip_id": f"video:{videos[1]['id']}"}},
        },
    ]
    store.put_bytes(
        "snapshots/snap1/pairs.jsonl", ("\n".join(json.dumps(p) for p in pairs) + "\n").encode()
    )
    store.put_bytes(
        "snapshots/snap1/manifest.json",
        json.dumps(
            {"id": "snap1", "name": "mini", "pairs_key": "snapshots/snap1/pairs.jsonl"}
        ).encode(),
    )
    with session_scope() as s:
        upsert(s, Source, sources)
        upsert(s, Video, videos)
        upsert(s, Clip, clips)
        upsert(
            s,
            Frame,
            [
                {
                    "id": stable_id(c["id"], i, "sample"),
                    "clip_id": c["id"],
                    "index": i,
                    "kind": "sample",
                    "time_ms": c["start_ms"],
                    "object_key": f"{c['frame_prefix']}{i:02d}.jpg",
                }
                for c in clips
                if c["kept"]
                for i in range(8)
            ],
        )
        upsert(
            s,
            Caption,
            [
                {
                    "id": stable_id(c["id"], "concise"),
                    "target_kind": "clip",
                    "target_id": c["id"],
                    "style": "concise",
                    "text": f"caption of {c['id'][:8]}",
                    "model": "template",
                    "prompt_version": "1",
                }
                for c in clips
            ],
        )
        upsert(
            s,
            Snapshot,
            [
                {
                    "id": "snap1",
                    "name": "mini",
                    "manifest_key": "snapshots/snap1/manifest.json",
                    "counts": {"T2V": 2},
                }
            ],
        )
    return {
        "sources": sources,
        "videos": videos,
        "clips": clips,
        "kept": [c for c in clips if c["kept"]],
    }


@pytest.fixture
def qdrant():
    from qdrant_client import QdrantClient

    client = QdrantClient(location=":memory:")
    yield client
    client.close()


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()
