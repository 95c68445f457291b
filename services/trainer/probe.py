"""The Modality Pyramid's probing (SPEC §4.2): the prober of each epoch and each task's alignment
R_k, shared out over the processes; and the checks that every process follows the same run."""

from __future__ import annotations

import json
import zlib
from typing import Any

import numpy as np
import torch

from services.trainer.data import PairBatcher, to_inputs
from services.trainer.pyramid import TaskSampler
from shared.config import TrainSettings
from shared.model import Embedder


def epoch_prober(epoch: int, ts: TrainSettings, model: Embedder) -> Embedder:
    """The prober Ψ_t of epoch ``epoch`` (SPEC §4.2): the configured off-the-shelf embedder in
    epoch 1 when ``train.prober`` is set, else the model being trained (at the end of epoch t-1)."""
    if epoch == 1 and ts.prober:
        return Embedder(ts.prober, device=str(model.device))
    return model


def probe_pairs(batcher: PairBatcher, n_pairs: int) -> dict[str, list[dict[str, Any]]]:
    """Each task's probe pairs: the same ``n_pairs`` (at most) in every epoch and on every
    process."""
    out = {}
    for task in batcher.tasks:
        pool = batcher.pools[task]
        idx = np.random.default_rng(len(pool)).permutation(len(pool))[:n_pairs]
        out[task] = batcher.pairs.take(pool[idx])  # read from the snapshot now
    return out


@torch.no_grad()
def probe_alignment(
    embedder: Embedder, batcher: PairBatcher, n_pairs: int, rank: int = 0, world: int = 1
) -> dict[str, float]:
    """R_k: mean positive-pair cosine of each task under the current model (SPEC §4.2).

    Under ``world`` processes each scores every ``world``-th probe pair of every task (positions
    ``rank, rank + world, ...``) and the per-pair cosines are all-reduced (SUM: each position is
    filled by exactly one process, zeros elsewhere), so every process averages the same values in
    the same order and gets bit-identical R_k, equal to one process scoring all pairs (up to the
    float rounding of other batch shapes). All processes must call it together."""
    was_training = embedder.model.training
    embedder.model.eval()
    probes = probe_pairs(batcher, n_pairs)
    total = sum(len(pairs) for pairs in probes.values())
    cos = torch.zeros(total, dtype=torch.float64, device=embedder.device)
    offset = 0
    for task, pairs in probes.items():
        mine = list(range(rank, len(pairs), world))
        if mine:
            q, y, *_ = to_inputs([pairs[i] for i in mine], batcher.task_of(task))
            sims = (embedder.embed(q) * embedder.embed(y)).sum(axis=1)
            cos[[offset + i for i in mine]] = torch.from_numpy(sims).to(cos)
        offset += len(pairs)
    if world > 1:
        torch.distributed.all_reduce(cos)
    out, offset = {}, 0
    for task, pairs in probes.items():
        n = len(pairs)
        out[task] = float(cos[offset : offset + n].mean()) if pairs else float("nan")
        offset += n
    embedder.model.train(was_training)
    return out


def replica_fingerprint(sampler: TaskSampler, batcher: PairBatcher) -> int:
    """A checksum of what decides the next steps' batches: the sampler's task probabilities
    (alignment, σ) and RNG, and the batcher's RNG."""
    state = {"sampler": sampler.state_dict(), "batcher": batcher.state_dict()}
    return zlib.crc32(json.dumps(state, sort_keys=True, default=repr).encode())


def check_replicas_agree(
    step: int, task: str, sampler: TaskSampler, batcher: PairBatcher, world: int
) -> None:
    """Every process must draw the same task and the same global batch each step, from identical
    task probabilities (same sampler and batcher, same seed, all-reduced probe scores): raise if any
    process diverged. One tiny all-gather of (task index, ``replica_fingerprint``) per step."""
    if world == 1:
        return
    mine = torch.tensor(
        [sampler.tasks.index(task), replica_fingerprint(sampler, batcher)], dtype=torch.long
    )
    if torch.distributed.get_backend() == "nccl":
        mine = mine.cuda()
    every = [torch.zeros_like(mine) for _ in range(world)]
    torch.distributed.all_gather(every, mine)
    if any(not torch.equal(t, every[0]) for t in every):
        tasks = [sampler.tasks[int(t[0])] for t in every]
        raise RuntimeError(
            f"processes diverged at step {step}: tasks by rank {tasks}, "
            f"sampler/batcher fingerprints {[int(t[1]) for t in every]}"
        )


def replica_divergence(params: list[torch.nn.Parameter], world: int) -> float:
    """Largest absolute difference of any trainable weight between processes (0.0 for one)."""
    if world == 1:
        return 0.0
    with torch.no_grad():
        hi = torch.cat([p.detach().reshape(-1).float() for p in params])
        lo = hi.clone()
        torch.distributed.all_reduce(hi, op=torch.distributed.ReduceOp.MAX)
        torch.distributed.all_reduce(lo, op=torch.distributed.ReduceOp.MIN)
        return float((hi - lo).max()) if hi.numel() else 0.0
