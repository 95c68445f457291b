"""The Modality Pyramid sampler (SPEC §4.2): softmax(R_k/σ) and the σ ramp."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from services.trainer.pyramid import TaskSampler, sigma_at, task_probabilities

R = {"T2T": 0.8, "T2V": 0.3, "I2V": 0.5, "TI2V": -0.1}


@pytest.mark.parametrize("sigma", [0.1, 0.55, 1.0])
def test_probabilities_are_softmax_of_alignment_over_sigma(sigma):
    p = task_probabilities(R, sigma)
    z = sum(math.exp(r / sigma) for r in R.values())
    for task, r in R.items():
        assert p[task] == pytest.approx(math.exp(r / sigma) / z)


def test_low_sigma_concentrates_on_aligned_tasks_high_sigma_flattens():
    sharp, flat = task_probabilities(R, 0.1), task_probabilities(R, 1.0)
    assert max(sharp, key=sharp.get) == "T2T" and sharp["T2T"] > 0.9
    assert max(flat.values()) - min(flat.values()) < 0.35


def test_sigma_ramps_linearly_per_epoch_and_per_step():
    assert [sigma_at(e, 3, 0, 0, 0.1, 1.0, "epoch") for e in (1, 2, 3)] == pytest.approx(
        [0.1, 0.55, 1.0]
    )
    steps = [sigma_at(1, 3, s, 11, 0.1, 1.0, "step") for s in range(11)]
    assert steps[0] == pytest.approx(0.1) and steps[-1] == pytest.approx(1.0)
    assert all(b - a == pytest.approx(0.09) for a, b in zip(steps, steps[1:], strict=False))


def test_draws_follow_the_distribution_and_state_round_trips():
    s = TaskSampler(list(R), mode="pyramid", seed=3)
    s.alignment, s.sigma = R, 0.55
    n = 20000
    counts = Counter(s.draw() for _ in range(n))
    for task, p in s.probabilities().items():
        assert counts[task] / n == pytest.approx(p, abs=0.015)
    state = s.state_dict()
    a = [s.draw() for _ in range(50)]
    s.load_state_dict(state)
    assert [s.draw() for _ in range(50)] == a


def test_uniform_ignores_alignment():
    s = TaskSampler(list(R), mode="uniform", seed=0)
    s.alignment, s.sigma = R, 0.1
    assert set(s.probabilities().values()) == {0.25}
