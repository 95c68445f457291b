"""Gradient Cache (Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under Memory
Limited Setup"): the contrastive loss of a large batch with the activation memory of one chunk.

The loss couples every embedding with every other, so a plain step keeps the activations of the
whole batch alive until its backward. Gradient Cache splits the step in two:

1. forward every side (queries, candidates, hard negatives) in chunks of ``chunk`` inputs under
   ``no_grad``, keeping only the embeddings (and each chunk's RNG state);
2. compute the loss (``services/trainer/loss.py``, cross-process negatives and hard negatives
   included) on those embeddings as leaf tensors and backpropagate it to them: ∂L/∂z, the cache;
3. forward each chunk again, now with autograd, under the RNG state it first ran with (so dropout
   draws the same masks), and backpropagate ∂L/∂z of its rows: the parameters receive
   Σ_chunks J_chunkᵀ ∂L/∂z_chunk = ∂L/∂θ.

The gradients equal those of forwarding the same chunks with autograd and backpropagating the loss
once (bit for bit up to float rounding); without dropout they equal the unchunked step's. Across
processes the result is this process's J_rᵀ ∂L/∂z_r, exactly what the plain step yields, so the
training loop's all-reduce (SUM) applies unchanged. The price is a second forward per chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch


class RngState:
    """The RNG state a chunk's forward starts with: torch's CPU generator and, for a model on a GPU,
    that device's generator (what dropout draws from)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    @contextmanager
    def replay(self) -> Iterator[None]:
        """Run under the captured state; the global state is left as it was on entry."""
        devices = [self.device] if self.cuda is not None else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.cpu)
            if self.cuda is not None:
                torch.cuda.set_rng_state(self.cuda, self.device)
            yield


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def grad_cache_backward(
    embedder: Any,
    sides: Sequence[Sequence[Any]],
    loss_fn: Callable[..., dict[str, torch.Tensor]],
    chunk: int,
) -> dict[str, torch.Tensor]:
    """Accumulate ∂loss/∂θ into the parameters' ``.grad`` (zero them before) for a loss over several
    sides of inputs, ``chunk`` inputs per forward; returns ``loss_fn``'s outputs, detached.

    ``embedder``: has ``collate(items) -> batch``, ``forward(batch) -> (n, D) tensor`` and
    ``device``. ``sides``: input lists, e.g. ``[queries, targets, hard_negatives]``; an empty side
    is passed to ``loss_fn`` as ``None``. ``loss_fn(*embeddings)``: a dict holding ``"loss"``."""
    if chunk < 1:
        raise ValueError(f"grad_cache_chunk must be at least 1, got {chunk}")
    device = torch.device(getattr(embedder, "device", "cpu"))
    # 1. embeddings without activations; inputs are collated once and kept for the second pass
    plans: list[list[tuple[Any, RngState]]] = []
    reps: list[torch.Tensor | None] = []
    for items in sides:
        plan, parts = [], []
        for part in _chunks(items, chunk):
            batch = embedder.collate(part)
            state = RngState(device)
            with torch.no_grad():
                parts.append(embedder.forward(batch))
            plan.append((batch, state))
        plans.append(plan)
        reps.append(torch.cat(parts).detach().requires_grad_() if parts else None)
    # 2. the loss on the embeddings as leaves: its gradient w.r.t. them is the cache
    out = loss_fn(*reps)
    out["loss"].backward()
    # 3. each chunk again with autograd, under its first pass's RNG state, fed its cached gradient
    for plan, rep in zip(plans, reps, strict=True):
        if rep is None or rep.grad is None:  # an empty side, or one the loss does not use
            continue
        grad, start = rep.grad, 0
        for batch, state in plan:
            with state.replay():
                z = embedder.forward(batch)
            z.backward(grad[start : start + z.size(0)])
            start += z.size(0)
    return {k: v.detach() for k, v in out.items()}
