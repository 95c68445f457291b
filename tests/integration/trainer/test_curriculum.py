"""The Modality Pyramid inside a real training run with ``train.sigma_ramp = step``: σ rises by one
increment per step from σ_min to σ_max, every step's task probabilities are softmax(R/σ) of the
alignment probed for its epoch and that step's σ, and R is re-probed once per epoch (constant
within one). Expected values are computed here, not by the trainer's own functions."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import select

from .world_snapshot import build_world_snapshot

STEPS, EPOCHS = 5, 2  # epoch 1: steps 1-2, epoch 2: steps 3-5
SIGMA_MIN, SIGMA_MAX = 0.1, 0.9


def test_sigma_ramps_per_step_and_each_steps_probabilities_follow_it(tmp_path, tiny_model_dir):
    from services.trainer.loop import TrainConfig, train
    from shared.db import session_scope
    from shared.db.models import TrainMetric

    snapshot = build_world_snapshot(8, seed=6, tasks=("T2V", "T2I"), name="ramp")
    train(
        TrainConfig(
            snapshot=snapshot,
            model=str(tiny_model_dir),
            steps=STEPS,
            batch_size=2,
            seed=1,
            preset="tiny",
            heldout_fraction=0.0,
            run_id="ramp",
            out=str(tmp_path / "ramp"),
            overrides={
                "epochs": EPOCHS,
                "sigma_ramp": "step",
                "sigma_min": SIGMA_MIN,
                "sigma_max": SIGMA_MAX,
                "probe_pairs": 2,
                "checkpoint_every": 1000,
            },
        )
    )
    with session_scope() as s:
        rows = [
            (m.step, m.task, m.values)
            for m in s.scalars(
                select(TrainMetric).where(TrainMetric.run_id == "ramp").order_by(TrainMetric.step)
            )
        ]
    assert [step for step, _, _ in rows] == list(range(1, STEPS + 1))
    sigmas = [v["sigma"] for _, _, v in rows]
    assert sigmas == pytest.approx(
        [SIGMA_MIN + (SIGMA_MAX - SIGMA_MIN) * i / (STEPS - 1) for i in range(STEPS)]
    )
    for step, task, v in rows:
        weights = {t: math.exp(r / v["sigma"]) for t, r in v["alignment"].items()}
        total = sum(weights.values())
        assert v["probs"] == pytest.approx({t: w / total for t, w in weights.items()}), step
        assert set(v["alignment"]) == {"T2V", "T2I"} and task in v["alignment"]
    alignments = [v["alignment"] for _, _, v in rows]
    assert alignments[0] == alignments[1] and alignments[2] == alignments[3] == alignments[4]
    assert alignments[2] != alignments[0]  # re-probed with the model trained in epoch 1
