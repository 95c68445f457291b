"""Symmetric InfoNCE (SPEC §4.3) with negatives gathered across processes (gradients flow back to
every process's slice), explicit hard negatives, and duplicate positives masked out.

L_i = ½ (L_i^{q→y} + L_i^{y→q}); q→y candidates are all gathered positives plus all gathered hard
negatives; y→q candidates are all gathered queries. A candidate from the same group (source video
or dedup cluster) as the positive is not a negative.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


def gather(x: torch.Tensor) -> torch.Tensor:
    """All-gather along dim 0 with gradients (identity in a single process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x), dim=0)


def gather_groups(groups: torch.Tensor) -> torch.Tensor:
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return groups
    out = [torch.zeros_like(groups) for _ in range(dist.get_world_size())]
    dist.all_gather(out, groups)
    return torch.cat(out)


def infonce(q: torch.Tensor, y: torch.Tensor, groups: torch.Tensor, temperature: float,
            hard: torch.Tensor | None = None, hard_groups: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Loss of the local batch against the global one. ``q``, ``y``: (B, D) unit rows (local);
    ``groups``: (B,) int64 group ids; ``hard``: (H, D) local hard negatives of groups ``hard_groups``.

    The value is the mean over the global batch, scaled so that summing gradients over processes
    (as DDP's averaging times world size does) equals the single-process gradient on the
    concatenated batch."""
    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    rank = dist.get_rank() if world > 1 else 0
    qa, ya, ga = gather(q), gather(y), gather_groups(groups)
    b = q.size(0)
    offset = rank * b  # equal local batch sizes across processes
    local = torch.arange(b, device=q.device) + offset
    logits_qy = q @ ya.T / temperature  # (B, N)
    same = groups[:, None] == ga[None, :]
    mask = same.clone()
    mask[torch.arange(b), local] = False  # keep the positive itself
    logits_qy = logits_qy.masked_fill(mask, float("-inf"))
    if hard is not None and hard.numel():
        ha, hg = gather(hard), gather_groups(hard_groups)
        logits_h = (q @ ha.T / temperature).masked_fill(groups[:, None] == hg[None, :], float("-inf"))
        logits_qy = torch.cat([logits_qy, logits_h], dim=1)
    logits_yq = (y @ qa.T / temperature).masked_fill(mask, float("-inf"))
    loss_qy = F.cross_entropy(logits_qy, local, reduction="sum")
    loss_yq = F.cross_entropy(logits_yq, local, reduction="sum")
    n_global = b * world
    loss = 0.5 * (loss_qy + loss_yq) / n_global * world  # world-scaled: DDP averages gradients
    with torch.no_grad():
        pos = (q * y).sum(-1)
        neg = (q @ ya.T).masked_fill(same, float("-inf"))
        hardest = neg.max(dim=1).values
        hardest = torch.where(torch.isinf(hardest), torch.zeros_like(hardest), hardest)
    return {"loss": loss, "pos_sim": pos.mean(), "hardest_neg_sim": hardest.mean(), "gap": (pos - hardest).mean()}
