"""Distributed probing and the per-step replica check of the training loop, without processes: the
collectives are replaced by what the other ranks would contribute (the real two-process run is
tests/integration/trainer/test_distributed.py)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

from services.trainer import loop
from services.trainer.data import PairBatcher
from services.trainer.pyramid import TaskSampler


class Model(torch.nn.Module):
    pass


class FakeEmbedder:
    """Unit vectors that depend only on the text: the same on every 'process'; counts what it
    embeds."""

    device = torch.device("cpu")
    dim = 8

    def __init__(self) -> None:
        self.model = Model()
        self.embedded: list[str] = []

    def embed(self, items) -> np.ndarray:  # noqa: ANN001
        self.embedded += [it.text for it in items]
        rows = [np.random.default_rng(zlib.crc32(it.text.encode())).normal(size=8) for it in items]
        return np.stack([r / np.linalg.norm(r) for r in rows]).astype(np.float32)


def _pairs() -> list[dict]:
    out = []
    for task, n in (("T2V", 7), ("T2I", 4), ("I2V", 1)):
        for i in range(n):
            out.append(
                {
                    "task": task,
                    "video_id": f"{task}-{i}",
                    "query": {"text": f"q {task} {i}"},
                    "target": {"text": f"y {task} {i % 3}"},
                }
            )
    return out


def test_each_rank_scores_its_share_and_the_sum_equals_one_process(monkeypatch):
    batcher = PairBatcher(_pairs())
    single = FakeEmbedder()
    expected = loop.probe_alignment(single, batcher, 5)
    assert len(single.embedded) == 2 * (5 + 4 + 1)
    world, partials, embedded = 3, [], []
    monkeypatch.setattr(
        torch.distributed, "all_reduce", lambda t, *a, **k: partials.append(t.clone())
    )
    for rank in range(world):
        emb = FakeEmbedder()
        loop.probe_alignment(emb, batcher, 5, rank, world)
        embedded.append(emb.embedded)
    # every probe pair scored exactly once, by one rank (the I2V task's single pair by rank 0 only)
    assert sorted(sum(embedded, [])) == sorted(single.embedded)
    assert [len(e) for e in embedded] == [2 * (2 + 2 + 1), 2 * (2 + 1), 2 * (1 + 1)]
    # what the all-reduce hands every rank, and the R_k each then computes: those of one process
    total = sum(partials)
    assert all((p != 0).sum() == len(e) // 2 for p, e in zip(partials, embedded, strict=True))

    def reduced(t, *a, **k):  # noqa: ANN001, ANN202
        t.copy_(total)

    monkeypatch.setattr(torch.distributed, "all_reduce", reduced)
    for rank in range(world):
        got = loop.probe_alignment(FakeEmbedder(), batcher, 5, rank, world)
        assert got.keys() == expected.keys()
        for task in got:
            assert got[task] == pytest.approx(expected[task], abs=1e-7)


def test_probing_restores_the_training_mode():
    emb = FakeEmbedder()
    emb.model.train()
    loop.probe_alignment(emb, PairBatcher(_pairs()), 3)
    assert emb.model.training


def test_embed_shared_gives_every_rank_all_rows(monkeypatch):
    from shared.model import EmbedInput

    items = [EmbedInput(text=f"clip {i}") for i in range(5)]
    expected = FakeEmbedder().embed(items)
    world, partials, embedded = 2, [], []
    monkeypatch.setattr(
        torch.distributed, "all_reduce", lambda t, *a, **k: partials.append(t.clone())
    )
    for rank in range(world):
        emb = FakeEmbedder()
        loop.embed_shared(emb, items, rank, world)
        embedded.append(emb.embedded)
    assert embedded == [["clip 0", "clip 2", "clip 4"], ["clip 1", "clip 3"]]
    assert np.array_equal(sum(partials).numpy(), expected)


def _gather_as(others: list[torch.Tensor]):  # noqa: ANN202
    def all_gather(out: list[torch.Tensor], mine: torch.Tensor) -> None:
        for i, t in enumerate([mine, *others]):
            out[i].copy_(t)

    return all_gather


def test_replica_check_raises_when_a_rank_drew_another_task_or_probability(monkeypatch):
    monkeypatch.setattr(torch.distributed, "get_backend", lambda *a: "gloo")
    batcher = PairBatcher(_pairs(), seed=1)
    sampler = TaskSampler(
        batcher.tasks, seed=1, alignment={"I2V": 0.3, "T2I": 0.2, "T2V": 0.1}, sigma=0.5
    )
    task = sampler.draw()
    fp = loop.replica_fingerprint(sampler, batcher)
    same = torch.tensor([sampler.tasks.index(task), fp])
    monkeypatch.setattr(torch.distributed, "all_gather", _gather_as([same.clone()]))
    loop.check_replicas_agree(1, task, sampler, batcher, 2)  # agreeing ranks pass
    other_task = torch.tensor([(sampler.tasks.index(task) + 1) % 3, fp])
    monkeypatch.setattr(torch.distributed, "all_gather", _gather_as([other_task]))
    with pytest.raises(RuntimeError, match="diverged at step 1"):
        loop.check_replicas_agree(1, task, sampler, batcher, 2)
    # a rank whose probe scores differ in the last bit has other task probabilities
    drifted = TaskSampler(
        batcher.tasks,
        seed=1,
        alignment={"I2V": 0.3, "T2I": 0.2, "T2V": np.nextafter(0.1, 1)},
        sigma=0.5,
    )
    drifted.draw()
    assert loop.replica_fingerprint(drifted, batcher) != fp
    monkeypatch.setattr(
        torch.distributed,
        "all_gather",
        _gather_as(
            [torch.tensor([sampler.tasks.index(task), loop.replica_fingerprint(drifted, batcher)])]
        ),
    )
    with pytest.raises(RuntimeError, match="diverged"):
        loop.check_replicas_agree(1, task, sampler, batcher, 2)
    loop.check_replicas_agree(1, task, sampler, batcher, 1)  # one process: nothing to compare
