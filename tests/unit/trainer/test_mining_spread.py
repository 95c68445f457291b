"""The mining spread: cosines of positives, mined and random negatives, the margin, the share of
queries whose hardest negative beats the positive, and how concentrated the negatives are."""

from __future__ import annotations

import numpy as np
import pytest

from services.trainer.mining_spread import task_spread


def _unit(rows: list[list[float]]) -> np.ndarray:
    x = np.array(rows, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_spread_measures_margin_confusion_and_hubs():
    cands = _unit([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]])
    queries = _unit([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    # query 0: positive 0 (cos 1), negative 3 (cos .707); query 1: positive 2 (cos 0) but its
    # negative 3 scores .707, above it; query 2: positive 2 (cos 1), negative 3 (cos 0)
    s = task_spread(queries, cands, [0, 2, 2], [[3], [3], [3]])
    h = np.sqrt(0.5)
    assert s["queries"] == 3
    assert s["positive_cos"] == pytest.approx((1 + 0 + 1) / 3, abs=1e-4)
    assert s["mined_cos"] == pytest.approx((h + h + 0) / 3, abs=1e-4)
    assert s["margin"] == pytest.approx(((1 - h) + (0 - h) + 1) / 3, abs=1e-4)
    assert s["above_positive"] == pytest.approx(1 / 3, abs=1e-4)
    assert (s["negatives"], s["distinct"], s["max_uses"]) == (3, 1, 3)
    assert s["top1pct_share"] == 1.0  # one candidate fills every negative slot: a hub
    assert -1 <= s["random_cos"] <= 1


def test_spread_without_negatives_or_positives():
    cands = _unit([[1, 0], [0, 1]])
    s = task_spread(_unit([[1, 0]]), cands, [-1], [[]])
    assert s["positive_cos"] is None and s["mined_cos"] is None and s["margin"] is None
    assert (s["negatives"], s["distinct"], s["max_uses"], s["top1pct_share"]) == (0, 0, 0, None)
