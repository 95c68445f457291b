"""Retrieval metrics per query from a ranked list, averaged over queries.

Conventions (the ones trec_eval uses, so the code is checked against pytrec_eval in the tests):
ranking by score descending with ties broken by document id descending; ``R@k`` is the video
retrieval recall — the query counts as a hit when any relevant item is in the top k (trec_eval's
``success_k``); ``P@1`` is the fraction of relevant items in the top 1; MRR is the reciprocal rank
of the first relevant item; nDCG@10 with binary gains.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def rank(scores: Mapping[str, float]) -> list[str]:
    return [d for d, _ in sorted(scores.items(), key=lambda kv: (-kv[1], _desc_key(kv[0])))]


def _desc_key(doc: str) -> tuple:
    return tuple(-ord(c) for c in doc) + (1,)


def query_metrics(ranked: Sequence[str], relevant: set[str]) -> dict[str, float]:
    hits = [d in relevant for d in ranked]
    first = next((i for i, h in enumerate(hits) if h), None)
    dcg = sum(1.0 / math.log2(i + 2) for i, h in enumerate(hits[:10]) if h)
    idcg = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
    return {
        "R@1": float(any(hits[:1])),
        "R@5": float(any(hits[:5])),
        "R@10": float(any(hits[:10])),
        "P@1": float(sum(hits[:1])) / 1.0,
        "MRR": 0.0 if first is None else 1.0 / (first + 1),
        "nDCG@10": dcg / idcg if idcg else 0.0,
    }


def evaluate_run(
    run: Mapping[str, Mapping[str, float]], qrels: Mapping[str, set[str]]
) -> dict[str, float]:
    """Mean of each metric over the queries of ``qrels`` (a query missing from ``run`` scores 0)."""
    totals: dict[str, float] = {}
    for qid, rel in qrels.items():
        m = query_metrics(rank(run.get(qid, {})), rel)
        for k, v in m.items():
            totals[k] = totals.get(k, 0.0) + v
    n = max(len(qrels), 1)
    return {k: v / n for k, v in totals.items()}
