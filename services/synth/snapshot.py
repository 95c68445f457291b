"""Dataset snapshots: an immutable, versioned manifest of pairs in the object store (the trainer's
input). The id is the content hash, so the same pairs always give the same snapshot. A snapshot
only references clips whose objects are stored (``clip_stored``): a pair whose query or target clip
stopped being kept (e.g. the consistency filter dropped it after another video took it as a hard
negative) is left out, as is such a hard negative, and the manifest counts them."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from shared import layout
from shared.db import init_db, session_scope, upsert
from shared.db.models import Clip, Pair, Snapshot, clip_stored
from shared.storage import get_store


def create_snapshot(name: str, tasks: list[str] | None = None, holdout_fraction: float = 0.0) -> dict[str, Any]:
    init_db()
    with session_scope() as s:
        q = select(Pair).order_by(Pair.id)
        if tasks:
            q = q.where(Pair.task.in_(tasks))
        stored = set(s.scalars(select(Clip.id).where(clip_stored())))
        pairs, lines, skipped = [], [], {"pairs": 0, "hard_negatives": 0}
        for p in s.scalars(q):
            if not (_usable(p.query, stored) and _usable(p.target, stored)):
                skipped["pairs"] += 1
                continue
            negs = [n for n in p.hard_negatives or [] if _usable(n, stored)]
            skipped["hard_negatives"] += len(p.hard_negatives or []) - len(negs)
            pairs.append(p)
            lines.append(json.dumps({"id": p.id, "task": p.task, "domain": p.domain, "video_id": p.video_id,
                                     "dedup_cluster": p.dedup_cluster, "query": p.query, "target": p.target,
                                     "hard_negatives": negs}, sort_keys=True))
    if not lines:
        raise ValueError("no pairs to snapshot: run a synthesis job first")
    body = ("\n".join(lines) + "\n").encode()
    sid = hashlib.sha256(body).hexdigest()[:16]
    counts: dict[str, int] = {}
    for p in pairs:
        counts[p.task] = counts.get(p.task, 0) + 1
    store = get_store()
    pairs_key = layout.pairs_jsonl_key(sid)
    manifest_key = layout.manifest_key(sid)
    manifest = {"id": sid, "name": name, "created_at": datetime.now(UTC).isoformat(), "counts": counts,
                "pairs_key": pairs_key, "videos": len({p.video_id for p in pairs}), "splits": {},
                "skipped": skipped}
    if not store.exists(manifest_key):  # immutable: never rewritten
        store.put_bytes(pairs_key, body, "application/jsonl")
        store.put_bytes(manifest_key, json.dumps(manifest, indent=1).encode(), "application/json")
    else:
        manifest = json.loads(store.get_bytes(manifest_key))
    with session_scope() as s:
        upsert(s, Snapshot, [{"id": sid, "name": manifest["name"], "manifest_key": manifest_key, "counts": counts}], update=[])
    return manifest


def _usable(side: Any, stored: set[str]) -> bool:
    """A side names no clip, a whole video, or a clip whose objects are stored."""
    video = side.get("video") if isinstance(side, dict) else None
    cid = video.get("clip_id") if isinstance(video, dict) else None
    return not cid or layout.is_video_ref(cid) or cid in stored


def list_snapshots() -> list[dict[str, Any]]:
    init_db()
    with session_scope() as s:
        return [{"id": r.id, "name": r.name, "counts": r.counts, "created_at": r.created_at.isoformat()}
                for r in s.scalars(select(Snapshot).order_by(Snapshot.created_at))]
