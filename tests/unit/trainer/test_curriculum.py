"""Which tasks the Modality Pyramid draws in each epoch (SPEC §4.2): with the task alignments R held
fixed, the draws of epoch e follow softmax(R/σ_e), σ_e on the per-epoch ramp, within a chi-square
bound; and σ alone changes the draws: epoch 1's counts are far outside epoch 3's distribution.

The epochs are driven as the training loop drives the sampler: σ set from ``sigma_at`` at each
epoch's start, then one draw per step (the loop's σ per step is tested on a real run in
tests/integration/trainer/test_curriculum.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chisquare

from services.trainer.pyramid import TaskSampler, sigma_at

R = {"T2T": 0.8, "T2V": 0.3, "I2V": 0.5, "TI2V": -0.1}  # fixed: probed once, not re-probed
EPOCHS, STEPS_PER_EPOCH, SIGMA_MIN, SIGMA_MAX = 3, 4000, 0.1, 1.0
P_MIN = 1e-3  # chi-square p-value bound; draws are seeded, so the outcome is fixed, not flaky


def _epochs(seed: int) -> list[tuple[float, dict[str, int]]]:
    sampler = TaskSampler(list(R), mode="pyramid", seed=seed)
    sampler.alignment = dict(R)
    out = []
    for epoch in range(1, EPOCHS + 1):
        sampler.sigma = sigma_at(epoch, EPOCHS, 0, 0, SIGMA_MIN, SIGMA_MAX, "epoch")
        counts = dict.fromkeys(sampler.tasks, 0)
        for _ in range(STEPS_PER_EPOCH):
            counts[sampler.draw()] += 1
        out.append((sampler.sigma, counts))
    return out


def _expected(sigma: float, tasks: list[str]) -> np.ndarray:
    """Expected counts from softmax(R/σ), computed here (not by the code under test)."""
    w = np.array([math.exp(R[t] / sigma) for t in tasks])
    return w / w.sum() * STEPS_PER_EPOCH


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_epochs_draws_follow_softmax_of_alignment_over_that_epochs_sigma(seed):
    epochs = _epochs(seed)
    assert [s for s, _ in epochs] == pytest.approx([0.1, 0.55, 1.0])
    for sigma, counts in epochs:
        tasks = sorted(counts)
        observed = np.array([counts[t] for t in tasks])
        assert chisquare(observed, _expected(sigma, tasks)).pvalue > P_MIN, (sigma, counts)


def test_sigma_alone_changes_the_draws():
    (s1, first), _, (s3, last) = _epochs(0)
    tasks = sorted(first)
    observed = np.array([first[t] for t in tasks])
    assert chisquare(observed, _expected(s3, tasks)).pvalue < 1e-12  # epoch 1 is not epoch 3's σ
    # the best-aligned task dominates under the low σ and loses its lead as σ rises; the worst gains
    assert first["T2T"] / STEPS_PER_EPOCH > 0.8 and last["T2T"] / STEPS_PER_EPOCH < 0.4
    assert first["TI2V"] < last["TI2V"]


def test_a_wrong_sigma_fails_the_bound():
    """The bound has power: epoch 2's draws against softmax(R/σ) at a σ 20% off are refused."""
    _, (sigma, counts), _ = _epochs(0)
    tasks = sorted(counts)
    observed = np.array([counts[t] for t in tasks])
    assert chisquare(observed, _expected(sigma * 1.2, tasks)).pvalue < P_MIN
