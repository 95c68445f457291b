"""Seed statistics: mean ± std and whether two samplers differ beyond their seed noise."""

from __future__ import annotations

import pytest

from shared.stats import ablation, differs, seed_summary


def test_mean_and_sample_std():
    s = seed_summary([0.1, 0.3])
    assert s["mean"] == pytest.approx(0.2) and s["std"] == pytest.approx(0.1414213, rel=1e-5)
    assert s["seeds"] == [0.1, 0.3]
    assert seed_summary([0.5])["std"] == 0.0


def test_difference_inside_the_noise_is_not_significant():
    # the two demo runs: pyramid 0.183 / 0.196, uniform 0.234 / 0.204
    out = ablation({"pyramid": [0.183, 0.196], "uniform": [0.234, 0.204]})
    assert out["significant"] is False and out["p_value"] > 0.05
    assert out["pyramid"]["mean"] == pytest.approx(0.1895)


def test_clear_difference_is_significant_and_one_seed_never_is():
    assert differs([0.50, 0.51, 0.52], [0.20, 0.21, 0.19])["significant"] is True
    assert differs([0.9], [0.1])["significant"] is False
