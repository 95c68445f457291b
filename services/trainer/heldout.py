"""The run's own held-out check: text→video R@1 and InfoNCE over the held-out source videos' T2V
pairs, before and after training, embedded in shares over the processes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from services.trainer.data import side_input
from services.trainer.pairindex import PairView
from shared.model import Embedder, EmbedInput

HELDOUT_TEMPERATURE = 0.05
T2V_INSTRUCTION = "Find a video according to the given text."


@torch.no_grad()
def embed_shared(
    embedder: Embedder, items: list[EmbedInput], rank: int = 0, world: int = 1
) -> np.ndarray:
    """Embeddings of ``items`` on every process, each process embedding every ``world``-th item
    (rows all-reduced: zeros elsewhere, so every process gets the same matrix). All processes must
    call it together."""
    if world == 1:
        return embedder.embed(items)
    rows = torch.zeros((len(items), embedder.dim), dtype=torch.float32, device=embedder.device)
    mine = list(range(rank, len(items), world))
    if mine:
        rows[mine] = torch.from_numpy(embedder.embed([items[i] for i in mine])).to(rows)
    torch.distributed.all_reduce(rows)
    return rows.cpu().numpy()


def _t2v(pairs: Sequence[dict[str, Any]]) -> Sequence[dict[str, Any]]:
    """The T2V pairs (of a lazily read view: only those are read)."""
    return pairs.of_task("T2V") if isinstance(pairs, PairView) else pairs


def _one_query_per_clip(pairs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    best: dict[str, dict[str, Any]] = {}
    for p in _t2v(pairs):
        if p["task"] != "T2V":
            continue
        clip = p["target"]["video"]["clip_id"]
        if clip not in best or len(p["query"]["text"]) < len(best[clip]["query"]["text"]):
            best[clip] = p
    return list(best.values())


def heldout_queries(pairs: Sequence[dict[str, Any]]) -> int:
    return len({p["target"]["video"]["clip_id"] for p in _t2v(pairs) if p["task"] == "T2V"})


@torch.no_grad()
def t2v_heldout(
    embedder: Embedder, pairs: Sequence[dict[str, Any]], rank: int = 0, world: int = 1
) -> tuple[float, float]:
    """Text→video R@1 and symmetric InfoNCE (τ 0.05) over held-out T2V pairs: one query per target
    clip (its shortest caption). Under ``world`` processes each embeds a 1/world share and all get
    the same scores (call it on all of them together)."""
    best = _one_query_per_clip(pairs)
    qs = [side_input(p["query"], T2V_INSTRUCTION) for p in best]
    ys = [side_input(p["target"], None) for p in best]
    if len(qs) < 2:
        return float("nan"), float("nan")
    was = embedder.model.training
    embedder.model.eval()
    sims = embed_shared(embedder, qs, rank, world) @ embed_shared(embedder, ys, rank, world).T
    embedder.model.train(was)
    logits = torch.from_numpy(sims) / HELDOUT_TEMPERATURE
    target = torch.arange(len(qs))
    ce = torch.nn.functional.cross_entropy
    loss = 0.5 * (ce(logits, target) + ce(logits.T, target))
    return float((sims.argmax(axis=1) == np.arange(len(qs))).mean()), float(loss)
