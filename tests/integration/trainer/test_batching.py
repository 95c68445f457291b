"""Per-task batch sizes (SPEC Table 7's BS column as configuration) and the configurable epoch-1
prober of the Modality Pyramid (SPEC §4.2: an off-the-shelf embedder, not the model in training)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from .conftest import home_env


def _metrics(run_id: str) -> list[dict]:
    from shared.db import session_scope
    from shared.db.models import TrainMetric

    with session_scope() as s:
        rows = s.scalars(
            select(TrainMetric).where(TrainMetric.run_id == run_id).order_by(TrainMetric.step)
        ).all()
        return [{"task": r.task, **r.values} for r in rows]


@pytest.mark.slow
def test_task_batch_sizes_and_epoch1_prober(world_home, monkeypatch, tmp_path):
    home_env(world_home, monkeypatch)
    from services.trainer.data import PairBatcher, heldout, load_snapshot
    from services.trainer.loop import TrainConfig, probe_alignment, train
    from shared.model import Embedder
    from shared.model.tiny import build_tiny_bundle

    prober = build_tiny_bundle(tmp_path / "prober", seed=1)  # another model: other cosines
    sizes = {"T2V": 3, "T2I": 5}
    common = dict(
        snapshot=world_home["snapshot"],
        model=world_home["model"],
        sampler="pyramid",
        steps=6,
        batch_size=4,
        seed=1,
        preset="tiny",
        heldout_fraction=0.2,
    )
    train(
        TrainConfig(
            **common,
            out=str(tmp_path / "a"),
            run_id="bs-prober",
            overrides={"task_batch_size": sizes, "prober": str(prober), "epochs": 1},
        )
    )
    train(TrainConfig(**common, out=str(tmp_path / "b"), run_id="bs-self", overrides={"epochs": 1}))
    with_prober, own = _metrics("bs-prober"), _metrics("bs-self")
    assert len(with_prober) == 6
    assert {m["task"] for m in with_prober} <= set(sizes)
    for m in with_prober:
        assert m["batch_size"] == sizes[m["task"]]
    assert {m["batch_size"] for m in own} == {4}
    # epoch 1 was probed by the configured prober, the same R_k as computing them with it directly
    snap = load_snapshot(world_home["snapshot"])
    batcher = PairBatcher([p for p in snap.pairs if not heldout(p["video_id"], 0.2)])
    from shared.config import get_settings

    expected = probe_alignment(Embedder(str(prober)), batcher, get_settings().train.probe_pairs)
    for task, value in expected.items():
        assert with_prober[0]["alignment"][task] == pytest.approx(value, abs=1e-4)
        assert own[0]["alignment"][task] != pytest.approx(value, abs=1e-4)
