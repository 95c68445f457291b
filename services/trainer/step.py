"""One optimisation step's forward and backward: symmetric InfoNCE over the batch's queries,
targets and hard negatives, with or without Gradient Cache; gradients summed over processes."""

from __future__ import annotations

from typing import Any

import torch

from services.trainer.gradcache import grad_cache_backward
from services.trainer.loss import infonce
from shared.config import TrainSettings
from shared.model import Embedder, EmbedInput


def _embed_grad(embedder: Embedder, items: list[EmbedInput]) -> torch.Tensor:
    return embedder.forward(embedder.collate(items))


def forward_backward(
    embedder: Embedder,
    q_in: list[EmbedInput],
    y_in: list[EmbedInput],
    h_in: list[EmbedInput],
    groups: list[int],
    hard_groups: list[int],
    ts: TrainSettings,
) -> dict[str, torch.Tensor]:
    """One step's symmetric InfoNCE on this process's inputs; accumulates ∂L/∂θ into ``.grad``
    (zero it before). With ``ts.grad_cache`` the inputs are embedded ``ts.grad_cache_chunk`` at a
    time (Gradient Cache), else each side in one forward. Returns the loss outputs, detached."""
    g = torch.tensor(groups, device=embedder.device)
    hg = torch.tensor(hard_groups, dtype=torch.long, device=embedder.device)

    def loss(q: torch.Tensor, y: torch.Tensor, h: torch.Tensor | None) -> dict[str, torch.Tensor]:
        return infonce(q, y, g, ts.temperature, h, hg if h is not None else None)

    if ts.grad_cache:
        return grad_cache_backward(embedder, [q_in, y_in, h_in], loss, ts.grad_cache_chunk)
    h = _embed_grad(embedder, h_in) if h_in else None
    out = loss(_embed_grad(embedder, q_in), _embed_grad(embedder, y_in), h)
    out["loss"].backward()
    return {k: v.detach() for k, v in out.items()}


def all_reduce_grads(params: list[torch.nn.Parameter]) -> None:
    """SUM over processes: each computed the global-batch loss (services/trainer/loss.py)."""
    for p in params:
        if p.grad is not None:
            torch.distributed.all_reduce(p.grad)


def limit_hard_negatives(batch: list[dict[str, Any]], k: int | None) -> list[dict[str, Any]]:
    """The batch with at most ``k`` hard negatives per pair (``train.task_hard_negatives``);
    ``None``: as the pairs carry them."""
    if k is None:
        return batch
    return [{**p, "hard_negatives": (p.get("hard_negatives") or [])[:k]} for p in batch]
