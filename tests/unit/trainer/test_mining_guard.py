"""Mining's optional guards: a cap on how often one candidate is a mined negative (against hubs)
and skipping candidates the prober scores above a fraction of the positive (likely false
negatives); both off by default, where a hub is every query's negative."""

from __future__ import annotations

import numpy as np

from services.trainer.mining import Guard, mine

N = 8


def _pairs() -> list[dict]:
    return [
        {
            "id": f"p{i}",
            "task": "T2V",
            "video_id": f"v{i}",
            "query": {"text": f"q{i}"},
            "target": {"video": {"clip_id": f"c{i}", "frames": [f"f{i}"]}},
        }
        for i in range(N)
    ]


def _embed(items) -> np.ndarray:  # noqa: ANN001
    """Clip c0 is a hub: every query scores it 0.9, its own positive 0.6, other clips 0."""
    rows = np.zeros((len(items), N), dtype=np.float32)
    for r, it in enumerate(items):
        if it.text:
            i = int(it.text[1:])
            rows[r, 0], rows[r, i] = 0.9, 0.6 if i else 1.0
        else:
            rows[r, int(it.video.keys[0][1:])] = 1.0
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _hub_uses(negatives: dict) -> int:
    return sum(n["video"]["clip_id"] == "c0" for negs in negatives.values() for n in negs)


def test_without_guards_the_hub_is_every_querys_negative():
    negatives, cost = mine(_pairs(), _embed, {"T2V": 1})
    assert _hub_uses(negatives) == N - 1  # all but c0's own query
    assert cost["spread"]["T2V"]["max_uses"] == N - 1
    assert cost["spread"]["T2V"]["above_positive"] > 0.8


def test_a_use_cap_spreads_the_negatives():
    negatives, cost = mine(_pairs(), _embed, {"T2V": 1}, Guard(max_uses=2))
    assert _hub_uses(negatives) == 2 and cost["spread"]["T2V"]["max_uses"] <= 2
    for i in range(N):
        (neg,) = negatives[f"p{i}"]  # still K for everyone, never the positive
        assert neg["video"]["clip_id"] != f"c{i}"


def test_candidates_above_the_positive_are_skipped():
    negatives, cost = mine(_pairs(), _embed, {"T2V": 1}, Guard(positive_ratio=0.95))
    assert _hub_uses(negatives) == 0
    assert cost["spread"]["T2V"]["above_positive"] == 0.0
    assert all(len(negatives[f"p{i}"]) == 1 for i in range(N))
