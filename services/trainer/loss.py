"""Symmetric InfoNCE (SPEC §4.3) with negatives gathered across processes, explicit hard negatives,
and duplicate positives masked out.

L_i = ½ (L_i^{q→y} + L_i^{y→q}); q→y candidates are all gathered positives plus all gathered hard
negatives; y→q candidates are all gathered queries. A candidate from the same group (source video
or dedup cluster) as the positive is not a negative.

Cross-process negatives: every process gathers the others' embeddings *without* autograd, splices
its own (differentiable) slice back in, and computes the loss of the whole global batch. Process
r's backward then yields J_rᵀ ∂L/∂z_r; the *sum* of those over processes (an all-reduce SUM of the
gradients, as the training loop does) is exactly ∂L/∂θ of one process on the concatenated batch.
This is open_clip's "full logits" scheme; it avoids autograd collectives (gloo's all_to_all
backward aborts intermittently) and costs only an N×N logit matrix per process.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def gather(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """All-gather rows from every process (sizes may differ), keeping gradients on this process's
    own rows. Returns the concatenation and the offset of the local rows in it."""
    world, rank = _world()
    if world == 1:
        return x, 0
    size = torch.tensor([x.size(0)], device=x.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    counts = [int(s) for s in sizes]
    longest = max(counts)
    padded = torch.zeros((longest, *x.shape[1:]), dtype=x.dtype, device=x.device)
    padded[: x.size(0)] = x.detach()
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    pieces = [p[:n] for p, n in zip(parts, counts, strict=True)]
    pieces[rank] = x
    return torch.cat(pieces, dim=0), sum(counts[:rank])


def infonce(
    q: torch.Tensor,
    y: torch.Tensor,
    groups: torch.Tensor,
    temperature: float,
    hard: torch.Tensor | None = None,
    hard_groups: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Loss of the global batch. ``q``, ``y``: (B, D) unit rows (local); ``groups``: (B,) int64
    group ids; ``hard``: (H, D) local hard negatives of groups ``hard_groups``.

    The value is the mean over the global batch, the same on every process; summing the
    processes' gradients gives the single-process gradient on the concatenated batch. The logged
    statistics (``pos_sim``, ``hardest_neg_sim``, ``gap``) are over the global batch too, so they
    do not depend on how many processes share it."""
    qa, _ = gather(q)
    ya, _ = gather(y)
    ga, _ = gather(groups)
    n = qa.size(0)
    target = torch.arange(n, device=q.device)
    same = ga[:, None] == ga[None, :]
    mask = same & ~torch.eye(n, dtype=torch.bool, device=q.device)  # keep the positive itself
    logits_qy = (qa @ ya.T / temperature).masked_fill(mask, float("-inf"))
    if hard is None:  # every process joins the same collectives, with or without hard negatives
        hard, hard_groups = q.new_zeros((0, q.size(1))), groups.new_zeros((0,))
    ha, _ = gather(hard)
    assert hard_groups is not None  # hard negatives come with their groups
    hg, _ = gather(hard_groups.to(groups.device))
    if ha.numel():
        logits_h = (qa @ ha.T / temperature).masked_fill(ga[:, None] == hg[None, :], float("-inf"))
        logits_qy = torch.cat([logits_qy, logits_h], dim=1)
    logits_yq = (ya @ qa.T / temperature).masked_fill(mask, float("-inf"))
    loss = 0.5 * (F.cross_entropy(logits_qy, target) + F.cross_entropy(logits_yq, target))
    with torch.no_grad():
        pos = (qa * ya).sum(-1)
        neg = (qa @ ya.T).masked_fill(same, float("-inf"))
        hardest = neg.max(dim=1).values
        hardest = torch.where(torch.isinf(hardest), torch.zeros_like(hardest), hardest)
    return {
        "loss": loss,
        "pos_sim": pos.mean(),
        "hardest_neg_sim": hardest.mean(),
        "gap": (pos - hardest).mean(),
    }
