"""Exact top-k by cosine (dot product of unit vectors) with bounded memory: the evaluator's
retrieval (services/evaluator) and the trainer's hard-negative mining (services/trainer/mining.py)
share it.

Results equal a full stable sort: scores descending, ties broken by the lower corpus index.

How: for a block of queries, score the corpus in tiles of ``block`` columns (one matmul each, a
size the BLAS runs at full speed) into a buffer of at most ``memory_mb``; right after each tile,
take the maximum of every run of ``chunk`` consecutive scores while the tile is still in cache.
Then, once per buffer, merge with the best k so far: only a chunk whose maximum beats the current
k-th best can change the result, and at most the k best such chunks matter (any score outside them
has k larger scores above it), so the selection touches a few chunks per query, not every score.
Where a cut falls on a tie (equal chunk maxima, or equal scores at rank k), those query rows are
merged by an exact stable sort instead, so ties never make the result depend on the order of work.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from shared.config import get_settings


def _by_score_then_index(
    s: torch.Tensor, i: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first k of each row ordered by score descending, then by index ascending."""
    o = torch.sort(i, dim=1).indices
    s, i = s.gather(1, o), i.gather(1, o)
    o = torch.sort(s, dim=1, descending=True, stable=True).indices[:, :k]
    return s.gather(1, o), i.gather(1, o)


@functools.cache
def _single_threaded_here() -> Callable[[], None] | None:
    """A function that makes torch's CPU ops single-threaded in the thread that calls it, and in no
    other: OpenMP's thread count and MKL's local one are per-thread settings, while
    ``torch.set_num_threads`` also changes the count every thread started later takes (a
    process-wide side effect). ``None`` where this torch build offers no such control (no OpenMP
    backend, or MKL without its per-thread call): then query blocks run one after another."""
    if "parallel backend: OpenMP" not in torch.__config__.parallel_info():
        return None
    try:  # dlsym on libtorch_cpu also searches the OpenMP runtime it was linked with
        lib = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))
        omp_set_num_threads = lib.omp_set_num_threads
    except (OSError, AttributeError):
        return None
    mkl_local = None
    if torch.backends.mkl.is_available():
        mkl_local = getattr(
            lib, "MKL_Set_Num_Threads_Local", None
        )  # the C entry (lower case is Fortran's)
        if mkl_local is None:
            return None

    def limit() -> None:
        # torch sets a thread up on its first op, from the process-wide count: first
        torch.get_num_threads()
        omp_set_num_threads(1)
        if mkl_local is not None:
            mkl_local(1)

    return limit


class _QueryBlock:
    """Running best k of one block of queries; the score buffer is laid out tile-major
    (tiles, queries, chunks per tile, chunk) so every tile is one contiguous matmul output."""

    def __init__(
        self, q: torch.Tensor, k: int, n: int, buf: torch.Tensor, mbuf: torch.Tensor
    ) -> None:
        self.q, self.k, self.nq = q, k, len(q)
        self.buf, self.mbuf = buf, mbuf
        self.best_s = torch.full((self.nq, k), -torch.inf)
        self.best_i = torch.full((self.nq, k), n, dtype=torch.long)

    def score(self, corpus: torch.Tensor, c0: int, nb: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores of corpus[c0 : c0 + nb] into the buffer (tail padded with -inf); chunk maxima."""
        _, qb, per_tile, chunk = self.buf.shape
        width = per_tile * chunk
        tiles = -(-nb // width)
        b, mb = self.buf[:tiles, : self.nq], self.mbuf[:tiles, : self.nq]
        for j in range(tiles):
            c = corpus[c0 + j * width : c0 + min((j + 1) * width, nb)]
            t = b[j].view(self.nq, width)
            if len(c) == width:
                torch.mm(self.q, c.T, out=t)
            else:
                t[:, : len(c)] = self.q @ c.T
                t[:, len(c) :] = -torch.inf
            torch.amax(b[j], 2, out=mb[j])
        return b, mb.permute(1, 0, 2).reshape(
            self.nq, tiles * per_tile
        )  # chunk j*per_tile+t, corpus order

    def merge(self, b: torch.Tensor, m: torch.Tensor, c0: int, nb: int) -> None:
        k, nq = self.k, self.nq
        _, qb, per_tile, chunk = self.buf.shape
        nch = m.shape[1]
        passing = (m > self.best_s[:, k - 1 : k]).sum(
            1
        )  # an equal score loses to the earlier index
        kc = min(k, int(passing.max()))
        if kc == 0:
            return
        ms, mi = torch.topk(m, min(kc + 1, nch), dim=1)
        tie = (
            (passing > kc) & (ms[:, kc - 1] == ms[:, kc])
            if nch > kc
            else torch.zeros(nq, dtype=torch.bool)
        )
        mi = mi[:, :kc].sort(dim=1).values
        rows = (
            ((mi // per_tile) * qb + torch.arange(nq).unsqueeze(1)) * per_tile + mi % per_tile
        ).flatten()
        cand = self.buf.view(-1, chunk).index_select(0, rows).view(nq, -1)
        ts, tp = torch.topk(torch.cat([self.best_s, cand], 1), k + 1, dim=1)
        tie |= ts[:, k - 1] == ts[:, k]
        tp = tp[:, :k]
        p = (tp - k).clamp(min=0)
        new_i = torch.where(
            tp < k,
            self.best_i.gather(1, tp.clamp(max=k - 1)),
            mi.gather(1, p // chunk) * chunk + p % chunk + c0,
        )
        new_s = ts[:, :k]
        if tie.any():
            r = tie.nonzero().squeeze(1)
            full = b[:, r].permute(1, 0, 2, 3).reshape(len(r), -1)[:, :nb]
            idx = torch.arange(c0, c0 + nb).expand(len(r), nb)
            new_s[r], new_i[r] = _by_score_then_index(
                torch.cat([self.best_s[r], full], 1), torch.cat([self.best_i[r], idx], 1), k
            )
        self.best_s, self.best_i = new_s, new_i

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        return _by_score_then_index(self.best_s, self.best_i, self.k)


def blocked_topk(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int,
    block: int | None = None,
    query_block: int | None = None,
    chunk: int | None = None,
    memory_mb: float | None = None,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(scores float32, indices int64), each (n_queries, min(k, n_corpus)), best first; ties by
    lower corpus index. Unset sizes come from ``Settings.eval``. Each of ``threads`` workers takes
    whole query blocks and owns one score buffer of query_block x (a multiple of block) floats,
    about ``memory_mb`` and at least one tile; torch's ops run single-threaded in those worker
    threads only (nothing process-wide changes: other threads keep their thread counts)."""
    cfg = get_settings().eval
    query_block = query_block or cfg.query_block
    chunk = chunk or cfg.topk_chunk
    memory_mb = memory_mb or cfg.topk_memory_mb
    qn = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    cn = torch.from_numpy(np.ascontiguousarray(corpus, dtype=np.float32))
    n = len(cn)
    k = min(k, n)
    out_s, out_i = np.empty((len(qn), k), np.float32), np.empty((len(qn), k), np.int64)
    if k == 0 or len(qn) == 0:
        return out_s, out_i
    width = min(max(chunk, (block or cfg.block_size) // chunk * chunk), -(-n // chunk) * chunk)
    threads = threads or cfg.topk_threads or torch.get_num_threads()
    qb = min(query_block, -(-len(qn) // threads))  # few queries: smaller blocks for every thread
    tiles = max(1, min(int(memory_mb * 2**20) // (qb * width * 4), -(-n // width)))
    workers = min(threads, -(-len(qn) // qb))
    limit = _single_threaded_here() if workers > 1 else None
    if limit is None:
        workers = 1  # one after another, each op on torch's own threads
    local = threading.local()

    def run(q0: int) -> None:
        if not hasattr(local, "buf"):  # one score buffer per worker thread
            if workers > 1 and limit is not None:
                limit()  # query blocks in parallel, each op single-threaded: no per-op barrier
            local.buf = torch.empty(tiles, qb, width // chunk, chunk)
            local.mbuf = torch.empty(tiles, qb, width // chunk)
        state = _QueryBlock(qn[q0 : q0 + qb], k, n, local.buf, local.mbuf)
        for c0 in range(0, n, tiles * width):
            nb = min(tiles * width, n - c0)
            state.merge(*state.score(cn, c0, nb), c0, nb)
        s, i = state.result()
        out_s[q0 : q0 + len(s)], out_i[q0 : q0 + len(s)] = s.numpy(), i.numpy()

    starts = range(0, len(qn), qb)
    if workers <= 1:
        for q0 in starts:
            run(q0)
        return out_s, out_i
    # the pool's threads end with the call, and their settings with them
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, starts))
    return out_s, out_i
