"""The blocked top-k equals a full stable sort (score descending, ties by lower corpus index) for
every block layout, including corpora full of exact ties and duplicate vectors."""

from __future__ import annotations

import numpy as np
import pytest

from services.evaluator.topk import blocked_topk


def _reference(q: np.ndarray, c: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    s = q @ c.T
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, order, 1), order


def _data(seed: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n, nq = int(rng.integers(1, 700)), int(rng.integers(1, 40))
    if kind == "ties":  # small integer vectors: scores collide everywhere
        return (
            rng.integers(-2, 3, size=(nq, 8)).astype(np.float32),
            rng.integers(-2, 3, size=(n, 8)).astype(np.float32),
        )
    c = rng.normal(size=(n, 16)).astype(np.float32)
    q = rng.normal(size=(nq, 16)).astype(np.float32)
    if kind == "duplicates":  # a third of the corpus copies a few vectors, as with repeated videos;
        c[rng.integers(0, n, n // 3)] = c[rng.integers(0, max(1, n // 50), n // 3)]
        return np.round(q * 8) / 8, np.round(
            c * 8
        ) / 8  # eighths: every dot product is exact in float32
    # unit vectors on a 1/64 grid: every dot product is exact in float32, so numpy's reference and
    # the blocked torch tiles agree to the bit whatever BLAS kernel or summation order each one uses
    # (unrounded, scores 4e-9 apart came out ordered in one and tied in the other)
    q, c = (
        q / np.linalg.norm(q, axis=1, keepdims=True),
        c / np.linalg.norm(c, axis=1, keepdims=True),
    )
    return np.round(q * 64) / 64, np.round(c * 64) / 64


LAYOUTS = [  # block, query_block, chunk, memory_mb (tiny budgets force one tile per merge)
    (64, 7, 16, 1e-6),
    (64, 7, 16, 0.01),
    (128, 100, 128, 1.0),
    (32, 3, 8, 0.002),
    (4096, 256, 128, 32.0),
]


@pytest.mark.parametrize("kind", ["ties", "duplicates", "random"])
@pytest.mark.parametrize("seed", range(6))
def test_equals_a_stable_full_sort(kind, seed):
    q, c = _data(seed, kind)
    k = int(np.random.default_rng(seed).integers(1, 30))
    ref_s, ref_i = _reference(q, c, k)
    for block, query_block, chunk, memory_mb in LAYOUTS:
        s, i = blocked_topk(
            q, c, k, block=block, query_block=query_block, chunk=chunk, memory_mb=memory_mb
        )
        assert i.shape == ref_i.shape == (len(q), min(k, len(c)))
        assert np.array_equal(i, ref_i), (block, query_block, chunk, memory_mb)
        assert np.allclose(s, ref_s, atol=1e-5)


def test_identical_corpus_rows_come_back_in_index_order():
    c = np.tile(np.eye(4, dtype=np.float32), (5, 1))  # rows 0, 4, 8, ... are the same vector
    s, i = blocked_topk(
        np.eye(4, dtype=np.float32)[:1], c, 6, block=8, query_block=1, chunk=2, memory_mb=1e-6
    )
    assert i[0].tolist() == [0, 4, 8, 12, 16, 1]
    assert s[0].tolist() == [1, 1, 1, 1, 1, 0]


def test_empty_and_oversized_k():
    c = np.eye(3, dtype=np.float32)
    s, i = blocked_topk(c, c, 10)
    assert i.tolist() == [[0, 1, 2], [1, 0, 2], [2, 0, 1]]
    assert blocked_topk(np.zeros((0, 3), np.float32), c, 2)[1].shape == (0, 2)


def test_sizes_default_to_settings(monkeypatch):
    monkeypatch.setenv("UNIVR_EVAL__QUERY_BLOCK", "2")
    monkeypatch.setenv("UNIVR_EVAL__TOPK_CHUNK", "4")
    from shared.config import get_settings

    get_settings.cache_clear()
    q, c = _data(3, "ties")
    assert np.array_equal(blocked_topk(q, c, 5)[1], _reference(q, c, 5)[1])
    get_settings.cache_clear()


def test_worker_threads_change_nothing_but_speed():
    import torch

    q, c = _data(4, "duplicates")
    before = torch.get_num_threads()
    one = blocked_topk(q, c, 7, block=32, query_block=4, chunk=8, threads=1)
    three = blocked_topk(q, c, 7, block=32, query_block=4, chunk=8, threads=3)
    assert np.array_equal(one[1], three[1]) and np.array_equal(one[1], _reference(q, c, 7)[1])
    assert torch.get_num_threads() == before  # the intra-op setting is restored


def test_worker_threads_leave_other_threads_thread_counts_alone(monkeypatch):
    """Only the worker threads run single-threaded: a thread that starts torch work while the top-k
    runs, and the caller, keep the process's thread count."""
    import threading

    import torch

    from services.evaluator import topk

    before = torch.get_num_threads()
    torch.set_num_threads(
        2
    )  # the process-wide count, even where the tests run with OMP_NUM_THREADS=1
    seen: dict[str, list[int]] = {"workers": [], "started meanwhile": []}
    score = topk._QueryBlock.score

    def spy(self, *args):  # noqa: ANN001, ANN002, ANN202
        seen["workers"].append(torch.get_num_threads())
        t = threading.Thread(
            target=lambda: seen["started meanwhile"].append(torch.get_num_threads())
        )
        t.start()
        t.join()
        return score(self, *args)

    monkeypatch.setattr(topk._QueryBlock, "score", spy)
    try:
        q, c = _data(5, "random")
        got = blocked_topk(q, c, 5, block=32, query_block=4, chunk=8, threads=2)
        assert np.array_equal(got[1], _reference(q, c, 5)[1])
        assert seen["started meanwhile"] and set(seen["started meanwhile"]) == {2}
        assert torch.get_num_threads() == 2
        if topk._single_threaded_here() is not None:  # this torch build can limit one thread
            assert set(seen["workers"]) == {1}  # workers do not oversubscribe the cores
    finally:
        torch.set_num_threads(before)
