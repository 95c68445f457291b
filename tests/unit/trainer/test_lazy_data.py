"""The trainer reads its snapshot lazily (services/trainer/shards.py, pairindex.py): the same seed
and snapshot give the same batches, probe pairs, held-out split and clip groups as the former
all-in-memory path (kept here as the reference); the row-group cache stays within its bound; a
damaged or missing shard is named; an older JSON-lines snapshot reads the same way."""

from __future__ import annotations

import json
import zlib
from typing import Any

import numpy as np
import pytest

from services.synth.snapshot import COLUMNS
from services.trainer.data import (
    PairBatcher,
    clip_groups,
    group_of,
    heldout,
    load_snapshot,
    open_snapshot,
    unit_of,
)
from services.trainer.heldout import _one_query_per_clip, heldout_queries
from services.trainer.mining import mine
from services.trainer.probe import probe_pairs
from services.trainer.pyramid import TaskSampler
from services.trainer.setup import load_run_data
from services.trainer.shards import ShardUnreadable
from shared import layout
from shared.snapshots import SnapshotCorrupt
from shared.storage import get_store
from shared.world.shards import COLUMNS as WRITTEN
from shared.world.shards import synthetic_pairs, write_shards

N, FRACTION = 2600, 0.2


class OldBatcher:
    """The batcher as it was before the lazy reader (all pairs in memory), verbatim."""

    def __init__(self, pairs: list[dict[str, Any]], seed: int = 0, unit: str = "task"):
        self.by_task: dict[str, list[dict[str, Any]]] = {}
        for p in pairs:
            self.by_task.setdefault(unit_of(p, unit), []).append(p)
        self.rng = np.random.default_rng(seed)

    def batch(self, task: str, size: int) -> list[dict[str, Any]]:
        pool = self.by_task[task]
        order = self.rng.permutation(len(pool))
        chosen, seen = [], set()
        for i in order:
            g = group_of(pool[i])
            if g not in seen:
                chosen.append(pool[i])
                seen.add(g)
            if len(chosen) == size:
                return chosen
        for i in order:
            if len(chosen) == size:
                break
            if pool[i] not in chosen:
                chosen.append(pool[i])
        while len(chosen) < size:
            chosen.append(pool[int(self.rng.integers(len(pool)))])
        return chosen


def _embed(items: list) -> np.ndarray:
    """A fixed pseudo-random unit embedding of each input (stable across processes)."""
    seeds = [zlib.crc32(repr(x).encode()) for x in items]
    rows = np.array([np.random.default_rng(s).normal(size=8) for s in seeds]).reshape(-1, 8)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _sequence(batcher: Any, seed: int, steps: int) -> list[tuple[str, list[str]]]:
    sampler = TaskSampler(sorted(batcher.by_task), mode="uniform", seed=seed)
    out = []
    for step in range(steps):
        unit = sampler.draw()
        size = (3, 16, 64, 400)[step % 4]  # 400: more than a unit's groups, then its pairs
        out.append((unit, [p["id"] for p in batcher.batch(unit, size)]))
    return out


@pytest.fixture
def parquet() -> str:
    write_shards(get_store(), "lazy1", synthetic_pairs(N, seed=3, videos=120), 700)
    return "lazy1"


@pytest.fixture
def jsonl() -> str:
    store, key = get_store(), layout.pairs_jsonl_key("old1")
    lines = "".join(
        json.dumps(p) + "\n" + ("\n" if i % 50 == 0 else "")
        for i, p in enumerate(synthetic_pairs(N // 2, seed=4, videos=60))
    )
    store.put_bytes(key, lines.encode(), "application/x-ndjson")
    manifest = {"id": "old1", "name": "old", "counts": {}, "pairs_key": key}
    store.put_bytes(layout.manifest_key("old1"), json.dumps(manifest).encode(), "application/json")
    return "old1"


def test_the_writer_writes_the_snapshot_jobs_columns():
    assert WRITTEN == COLUMNS


@pytest.mark.parametrize("which", ["parquet", "jsonl"])
@pytest.mark.parametrize("unit", ["task", "dataset"])
def test_batches_equal_the_in_memory_path(request, which, unit):
    sid = request.getfixturevalue(which)
    pairs = load_snapshot(sid).pairs
    old_train = [p for p in pairs if not heldout(p["video_id"], FRACTION)]
    data = load_run_data(sid, FRACTION, cache_groups=2)
    for seed in (0, 7):
        old = _sequence(OldBatcher(old_train, seed=seed, unit=unit), seed, 40)
        new = _sequence(PairBatcher(data.train_pairs, seed=seed, unit=unit), seed, 40)
        assert new == old
    assert [p["id"] for p in data.train_pairs] == [p["id"] for p in old_train]
    assert list(data.eval_pairs) == [p for p in pairs if heldout(p["video_id"], FRACTION)]
    assert data.task_pairs() == {
        t: sum(p["task"] == t for p in old_train) for t in data.task_pairs()
    }
    old_groups = clip_groups(pairs)
    clips = [*old_groups, "no-such-clip"]
    assert [data.groups_of_clips.get(c, -1) for c in clips] == [
        old_groups.get(c, -1) for c in clips
    ]


def test_probe_and_heldout_read_the_same_pairs(parquet):
    pairs = load_snapshot(parquet).pairs
    data = load_run_data(parquet, FRACTION, cache_groups=2)
    old = OldBatcher([p for p in pairs if not heldout(p["video_id"], FRACTION)])
    new = PairBatcher(data.train_pairs)
    want = {}
    for task, pool in old.by_task.items():
        idx = np.random.default_rng(len(pool)).permutation(len(pool))[:9]
        want[task] = [pool[i]["id"] for i in idx]
    assert {t: [p["id"] for p in ps] for t, ps in probe_pairs(new, 9).items()} == want
    old_eval = [p for p in pairs if heldout(p["video_id"], FRACTION)]
    assert _one_query_per_clip(data.eval_pairs) == _one_query_per_clip(old_eval)
    assert heldout_queries(data.eval_pairs) == heldout_queries(old_eval) > 0


def test_mining_reads_lazily_and_its_negatives_apply_as_pairs_are_read(parquet):
    pairs = [p for p in load_snapshot(parquet).pairs if p["task"] in ("T2V", "T2I")]
    data = load_run_data(parquet, 0.0, cache_groups=2)
    lazy = data.train_pairs.subset(np.isin(data.train_pairs.tasks(), ["T2V", "T2I"]))

    old_neg, _ = mine(pairs, _embed, {"T2V": 2})
    new_neg, _ = mine(lazy, _embed, {"T2V": 2})
    assert new_neg == old_neg and len(new_neg) == sum(p["task"] == "T2V" for p in pairs)
    lazy.negatives = new_neg
    first = next(p for p in lazy if p["task"] == "T2V")
    assert first["hard_negatives"] == new_neg[first["id"]]


def test_the_cache_holds_at_most_its_row_groups(parquet):
    snap = open_snapshot(parquet, cache_groups=3)
    batcher = PairBatcher(snap.pairs, seed=1)
    for step in range(30):
        batcher.batch(batcher.tasks[step % len(batcher.tasks)], 32)
        assert len(snap.source.cache) <= 3
    assert snap.source.loads > 3  # groups were evicted and read again
    assert snap.pairs.compact.nbytes() < 40 * len(snap.pairs)


def test_a_damaged_shard_is_named(parquet):
    store = get_store()
    key = layout.shard_key(parquet, 2)
    data = bytearray(store.get_bytes(key))
    data[len(data) // 2] ^= 0xFF
    store.put_bytes(key, bytes(data), "application/vnd.apache.parquet")
    with pytest.raises(SnapshotCorrupt, match=key):
        open_snapshot(parquet)


def test_a_missing_shard_is_named(parquet):
    key = layout.shard_key(parquet, 1)
    get_store().delete(key)
    with pytest.raises(ShardUnreadable, match=f"{key}: shard missing"):
        open_snapshot(parquet)


def test_a_shard_gone_after_the_pass_is_named_when_read(parquet):
    snap = open_snapshot(parquet, cache_groups=1)
    key = layout.shard_key(parquet, 3)
    get_store().delete(key)
    with pytest.raises(ShardUnreadable, match=key):
        list(snap.pairs)


def test_jsonl_rows_are_validated_and_spooled(jsonl):
    snap = open_snapshot(jsonl, cache_groups=1)
    assert len(snap.pairs) == N // 2 and snap.source.paths[0].suffix == ".parquet"
    assert snap.pairs[N // 2 - 1] == load_snapshot(jsonl).pairs[-1]
    snap.source.close()
    assert not snap.source.paths[0].exists()


def test_an_epochs_mined_negatives_reach_the_lazily_read_batches(parquet, monkeypatch):
    import services.trainer.mining as mining
    from shared.config import TrainSettings

    monkeypatch.setattr(mining, "prober_embed", lambda *_a, **_k: _embed)
    data = load_run_data(parquet, FRACTION, cache_groups=2)
    ts = TrainSettings(mined_negatives_per_task={"T2V": 1})
    assert mining.mine_for_epoch(data.train_pairs, None, ts, "run1", 1) == 1
    batcher = PairBatcher(data.train_pairs)  # the batcher reads the same view
    assert all(len(p["hard_negatives"]) == 1 for p in batcher.batch("T2V", 8))
    assert all(p["hard_negatives"] == [] for p in batcher.batch("I2V", 8))  # K 0: none
    assert get_store().exists("checkpoints/run1/mined/epoch-001.json")
