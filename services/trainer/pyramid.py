"""The Modality Pyramid (SPEC §4.2): each batch is one task, drawn with probability
P_t(k) = softmax(R_k(t) / σ(t)), where R_k is the prober's mean positive-pair cosine of task k and
σ ramps linearly from σ_min to σ_max (per epoch or per step). ``uniform`` is the ablation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


def sigma_at(
    epoch: int,
    epochs: int,
    step_in_run: int,
    total_steps: int,
    sigma_min: float,
    sigma_max: float,
    ramp: str,
) -> float:
    """σ for ``epoch`` (1-based) or for a step, rising linearly from σ_min to σ_max."""
    if ramp == "step":
        frac = step_in_run / max(total_steps - 1, 1)
    else:
        frac = (epoch - 1) / max(epochs - 1, 1)
    return sigma_min + (sigma_max - sigma_min) * min(max(frac, 0.0), 1.0)


def task_probabilities(alignment: dict[str, float], sigma: float) -> dict[str, float]:
    tasks = sorted(alignment)
    r = np.array([alignment[t] for t in tasks], dtype=np.float64) / sigma
    p = np.exp(r - r.max())
    p /= p.sum()
    return dict(zip(tasks, p.tolist(), strict=True))


@dataclass
class TaskSampler:
    tasks: list[str]
    mode: str = "pyramid"  # pyramid | uniform
    seed: int = 0
    alignment: dict[str, float] = field(default_factory=dict)
    sigma: float = 1.0
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.tasks = sorted(self.tasks)
        self.rng = np.random.default_rng(self.seed)

    def probabilities(self) -> dict[str, float]:
        if self.mode == "uniform" or not self.alignment:
            return {t: 1.0 / len(self.tasks) for t in self.tasks}
        return task_probabilities({t: self.alignment.get(t, 0.0) for t in self.tasks}, self.sigma)

    def draw(self) -> str:
        probs = self.probabilities()
        return str(self.rng.choice(self.tasks, p=[probs[t] for t in self.tasks]))

    def state_dict(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "mode": self.mode,
            "alignment": self.alignment,
            "sigma": self.sigma,
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tasks, self.mode = state["tasks"], state["mode"]
        self.alignment, self.sigma = dict(state["alignment"]), state["sigma"]
        self.rng.bit_generator.state = state["rng"]
