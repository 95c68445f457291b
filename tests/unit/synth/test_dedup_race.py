"""Many workers racing on duplicate-heavy input (PostgreSQL, 6 processes): clips of many videos
in a few clusters of near-identical hashes are claimed and finalized at the same moment; exactly
one clip per cluster ends stored, every other one is rejected as a duplicate of a stored clip, and
no lock is shared by clips with nothing in common (per-band-bucket locks)."""

from __future__ import annotations

import multiprocessing as mp
import os

import numpy as np
import pytest
from sqlalchemy import select

from shared.db.models import Clip, clip_stored

WORKERS = 6
CLUSTERS = 8
PER_CLUSTER = 6  # clips of distinct videos per cluster, within 2 bits of the cluster's hash


def _cands(seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for c in range(CLUSTERS):
        base = (int(rng.integers(0, 2**32)) << 32) | int(rng.integers(0, 2**32))
        for k in range(PER_CLUSTER):
            h = base
            for bit in rng.choice(64, size=int(rng.integers(0, 2)), replace=False):
                h ^= 1 << int(bit)
            out.append(
                {
                    "cluster": c,
                    "id": f"clip-{c}-{k}",
                    "video": f"video-{c}-{k}",
                    "phash": f"{h:016x}",
                }
            )
    return out


def _worker(url: str, home: str, mine: list[dict], barrier) -> None:  # noqa: ANN001
    os.environ["UNIVR_DATABASE__URL"] = url
    os.environ["UNIVR_HOME"] = home
    from services.synth import dedup
    from shared.config import get_settings
    from shared.storage import get_store

    frame = np.zeros((4, 4, 3), np.uint8)
    max_bits = get_settings().synth.dedup_hamming
    built = [
        {
            "id": c["id"],
            "start": 0.0,
            "end": 1.0,
            "motion": 1.0,
            "phash": c["phash"],
            "reason": None,
            "frames": [frame],
            "times": [0.0],
            "key_frame": frame,
            "video": c["video"],
        }
        for c in mine
    ]
    barrier.wait()
    claimed = [c for c in built if dedup.claim_clip(c, c["video"], max_bits)]
    barrier.wait()  # every claim is in before anyone finalizes: all race in finalize
    for c in claimed:
        dedup.finalize_clip(get_store(), c, c["video"], max_bits)


@pytest.mark.postgres
def test_racing_workers_keep_exactly_one_clip_per_cluster(postgres_url, univr_home, monkeypatch):
    from shared.db import init_db, session_scope, upsert
    from shared.db.models import Video
    from shared.db.session import reset_engines

    monkeypatch.setenv("UNIVR_DATABASE__URL", postgres_url)
    from shared.config import get_settings

    get_settings.cache_clear()
    reset_engines()
    init_db()
    cands = _cands(3)
    with session_scope() as s:
        upsert(s, Video, [{"id": c["video"], "uri": f"/{c['video']}"} for c in cands])
    reset_engines()
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(WORKERS, timeout=120)
    shares = [cands[i::WORKERS] for i in range(WORKERS)]  # every cluster spread over the workers
    procs = [
        ctx.Process(target=_worker, args=(postgres_url, str(univr_home), share, barrier))
        for share in shares
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * WORKERS
    by_id = {c["id"]: c["cluster"] for c in cands}
    with session_scope() as s:
        stored = s.scalars(select(Clip.id).where(clip_stored())).all()
        rejected = s.execute(
            select(Clip.id, Clip.reject_reason, Clip.dedup_cluster).where(Clip.kept.is_(False))
        ).all()
    assert sorted(by_id[c] for c in stored) == list(range(CLUSTERS))  # exactly one per cluster
    assert len(rejected) == len(cands) - CLUSTERS
    winners = set(stored)
    for cid, reason, cluster in rejected:
        assert reason.startswith("near-duplicate of clip ") and cluster in winners
        assert by_id[cluster] == by_id[cid]
    reset_engines()
