"""How far the mined hard negatives are from the positives, under the prober that mined them: what
tells a reader why training on mined negatives differs from training on random ones.

Per task: the mean prober cosine of query to positive, to its mined negatives and to one random
candidate of the same pool (what a random negative would be); the mean margin of the positive over
the hardest mined negative and the share of queries whose hardest mined negative scores *above*
their positive (a confused prober, or false negatives the guards cannot see); and how concentrated
the negatives are: distinct candidates, the most uses of one candidate (a hub) and the share of
all negative slots the busiest 1% of candidates fill."""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

import numpy as np


def task_spread(
    queries: np.ndarray,
    candidates: np.ndarray,
    positives: list[int],
    mined: list[list[int]],
    seed: int = 0,
) -> dict[str, Any]:
    """``queries`` (n, d) and ``candidates`` (m, d): unit rows; ``positives[i]``: query i's
    positive candidate (-1: not in the pool); ``mined[i]``: its negatives, hardest first."""
    n = len(mined)
    rng = np.random.default_rng(seed)
    has_pos = np.array([p >= 0 for p in positives], dtype=bool)
    pos_cos = np.einsum("nd,nd->n", queries, candidates[np.maximum(positives, 0)])
    rand_cos = np.einsum("nd,nd->n", queries, candidates[rng.integers(0, len(candidates), n)])
    neg_cos = [queries[i] @ candidates[m].T if m else np.zeros(0) for i, m in enumerate(mined)]
    hardest = np.array([c[0] if len(c) else np.nan for c in neg_cos])
    both = has_pos & ~np.isnan(hardest)
    uses = Counter(i for m in mined for i in m)
    slots = sum(uses.values())
    busiest = sorted(uses.values(), reverse=True)[: max(1, len(candidates) // 100)]
    flat = np.concatenate(neg_cos) if slots else np.zeros(0)
    return {
        "queries": n,
        "positive_cos": _mean(pos_cos[has_pos]),
        "mined_cos": _mean(flat),
        "random_cos": _mean(rand_cos),
        "margin": _mean(pos_cos[both] - hardest[both]),
        "above_positive": _mean((hardest[both] > pos_cos[both]).astype(float)),
        "negatives": slots,
        "distinct": len(uses),
        "max_uses": max(uses.values(), default=0),
        "top1pct_share": round(sum(busiest) / slots, 4) if slots else None,
    }


def _mean(x: np.ndarray) -> float | None:
    return round(float(np.mean(x)), 4) if len(x) else None


def print_spread(epoch: int, spread: dict[str, dict[str, Any]]) -> None:
    """One line per task on stderr."""
    for task, s in spread.items():
        print(
            f"mined spread epoch {epoch} {task}: cos positive {s['positive_cos']}, mined "
            f"{s['mined_cos']}, random {s['random_cos']}; margin {s['margin']}, hardest above the "
            f"positive for {s['above_positive']} of {s['queries']} queries; {s['negatives']} "
            f"negatives from {s['distinct']} candidates (max uses {s['max_uses']}, busiest 1% "
            f"fill {s['top1pct_share']})",
            file=sys.stderr,
        )
