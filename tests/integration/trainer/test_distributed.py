"""A real two-process training run, started the way users start one (`univr train run --nproc 2`:
torchrun, gloo on CPU), follows the one-process run whose batches are the two ranks' batches
concatenated (same seed, dropout off):

- both ranks end with the same LoRA weights (the run reports their largest difference), equal to
  the one-process run's within float rounding;
- the Modality Pyramid drew the same task on both ranks at every step, from identical task
  probabilities (the loop checks that every step and aborts on a mismatch), and the same tasks and
  probabilities as the one-process run;
- the prober scored the probe pairs in two shares (5 pairs per task: 3 + 2) whose scores were
  all-reduced: the alignment equals the one-process run's at both epoch boundaries;
- the held-out evaluation (each rank embeds half) scores as on one process;
- only rank 0 wrote: one metric row per step, checkpoints at steps 2 and 4 equal to the
  one-process run's (sampler and batcher states exactly, weights and optimizer within rounding),
  one result.json, the run row marked done with world size 2.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from sqlalchemy import select

from .conftest import home_env, univr

STEPS, PER_RANK, SEED = 4, 4, 7
KNOBS = {
    "epochs": 2,
    "probe_pairs": 5,
    "checkpoint_every": 2,
}  # probes at steps 1 and 3; 5 pairs: 3 + 2


@pytest.fixture(scope="module")
def small_home(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 24-video, three-task world snapshot with one hard negative per video pair, and the tiny
    bundle."""
    from shared.config import get_settings
    from shared.db.session import reset_engines
    from shared.model.tiny import build_tiny_bundle

    from .world_snapshot import build_world_snapshot

    root = tmp_path_factory.mktemp("dist-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIVR_")}
    env.update(UNIVR_HOME=str(root / "home"), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UNIVR_HOME", env["UNIVR_HOME"])
        get_settings.cache_clear()
        reset_engines()
        snapshot = build_world_snapshot(
            24, seed=5, name="dist", tasks=("T2V", "I2V", "T2I"), hard_negatives=1
        )
        model = build_tiny_bundle(root / "tiny")
    get_settings.cache_clear()
    reset_engines()
    return {"env": env, "snapshot": snapshot, "model": str(model), "root": root}


def _config(home: dict, run_id: str, batch_size: int, out: Path) -> dict:
    return {
        "snapshot": home["snapshot"],
        "model": home["model"],
        "sampler": "pyramid",
        "steps": STEPS,
        "batch_size": batch_size,
        "seed": SEED,
        "preset": "tiny",
        "heldout_fraction": 0.2,
        "run_id": run_id,
        "out": str(out),
        "overrides": dict(KNOBS),
    }


def _metrics(run_id: str) -> list[dict]:
    from shared.db import session_scope
    from shared.db.models import TrainMetric

    with session_scope() as s:
        rows = s.scalars(
            select(TrainMetric).where(TrainMetric.run_id == run_id).order_by(TrainMetric.step)
        ).all()
        return [{"step": r.step, "task": r.task, "loss": r.loss, **r.values} for r in rows]


def _close(a: dict[str, float], b: dict[str, float], tol: float) -> bool:
    return a.keys() == b.keys() and all(abs(a[k] - b[k]) <= tol for k in a)


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_process_run_equals_one_process_run_on_concatenated_batches(
    small_home, monkeypatch, tmp_path
):
    # two processes, PER_RANK pairs each, through the user's entry point
    two_cfg = tmp_path / "two.yaml"
    two_cfg.write_text(yaml.safe_dump(_config(small_home, "dist-two", PER_RANK, tmp_path / "two")))
    printed = univr(
        "train", "run", "--config", str(two_cfg), "--nproc", "2", "--json", env=small_home["env"]
    )
    lines = [json.loads(line) for line in printed.splitlines() if line.startswith("{")]
    assert len(lines) == 1  # only rank 0 reports
    two = lines[0]
    # one process, the concatenation of both ranks' slices as its batch
    home = home_env(small_home, monkeypatch)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from services.trainer import checkpoint as ckpt
    from services.trainer.loop import TrainConfig, train
    from shared.db import session_scope
    from shared.db.models import Checkpoint, TrainingRun

    one = train(TrainConfig(**_config(small_home, "dist-one", 2 * PER_RANK, tmp_path / "one")))

    # the same LoRA weights on rank 0, rank 1 and the one-process run
    assert two["world_size"] == 2 and one["world_size"] == 1
    assert two["replica_max_abs_diff"] <= 1e-7
    w_two = load_file(str(tmp_path / "two" / "adapter" / "adapter_model.safetensors"))
    w_one = load_file(str(tmp_path / "one" / "adapter" / "adapter_model.safetensors"))
    scale = max(float(v.abs().max()) for v in w_one.values())
    assert scale > 1e-3  # LoRA B moved off its zero init: the comparison means something
    # float32 round-off only: the two processes sum each gradient in another order, and Adam divides
    # by sqrt(v), so the order's last-bit differences grow over the steps; with frames at the
    # model's pixel budget (more visual tokens per reduction) that is 3.6e-6 here (1.3e-7 before).
    # A real difference (another batch, a missed all-reduce) moves weights by ~lr = 1e-3.
    assert _max_diff(w_two, w_one) <= 1e-5 * max(scale, 1.0)

    # the held-out evaluation, embedded half by each rank, scores as on one process
    assert two["heldout_queries"] == one["heldout_queries"] >= 2
    for key in ("heldout_t2v_r1_before", "heldout_t2v_r1_after"):
        assert two[key] == one[key]
    for key in ("heldout_t2v_loss_before", "heldout_t2v_loss_after"):
        assert two[key] == pytest.approx(one[key], rel=1e-5)

    # the same tasks, from the same probabilities and probe scores, and the same losses, every step
    m_two, m_one = _metrics("dist-two"), _metrics("dist-one")
    assert [m["step"] for m in m_two] == [m["step"] for m in m_one] == list(range(1, STEPS + 1))
    assert [m["task"] for m in m_two] == [m["task"] for m in m_one]
    for a, b in zip(m_two, m_one, strict=True):
        assert a["batch_size"] == b["batch_size"] == 2 * PER_RANK
        assert a["sigma"] == b["sigma"]
        assert _close(a["alignment"], b["alignment"], 1e-5), (a["alignment"], b["alignment"])
        assert _close(a["probs"], b["probs"], 1e-5), (a["probs"], b["probs"])
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["pos_sim"] == pytest.approx(
            b["pos_sim"], abs=1e-5
        )  # statistics of the global batch
    assert (
        m_two[0]["alignment"] != m_two[2]["alignment"]
    )  # epoch 2 was probed again, by the trained model
    assert m_two[0]["sigma"] < m_two[2]["sigma"]
    assert [p["probs"].keys() for p in two["task_probs"]] == [
        p["probs"].keys() for p in one["task_probs"]
    ]

    # only rank 0 wrote: its checkpoints match the one-process run's; one result.json; the run is
    # done
    with session_scope() as s:
        steps = {
            r: sorted(c.step for c in s.scalars(select(Checkpoint).where(Checkpoint.run_id == r)))
            for r in ("dist-two", "dist-one")
        }
        run_two = s.get(TrainingRun, "dist-two")
        assert (run_two.state, run_two.step, run_two.config["world_size"]) == ("done", STEPS, 2)
    assert steps["dist-two"] == steps["dist-one"] == [2, 4]
    assert ckpt.latest("dist-two")["step"] == STEPS
    for step in (2, 4):
        a, b = (ckpt.load_state(f"checkpoints/{r}/{step:08d}") for r in ("dist-two", "dist-one"))
        assert a["sampler"] == b["sampler"] | {"alignment": a["sampler"]["alignment"]}
        assert _close(a["sampler"]["alignment"], b["sampler"]["alignment"], 1e-5)
        assert a["batcher"] == b["batcher"]  # the same global batches were drawn
        assert (a["step"], a["epoch"]) == (b["step"], b["epoch"])
        exp_a, exp_b = a["optimizer"]["state"], b["optimizer"]["state"]
        assert exp_a.keys() == exp_b.keys()
        for k in exp_a:
            assert torch.allclose(exp_a[k]["exp_avg"], exp_b[k]["exp_avg"], atol=1e-6, rtol=1e-3)
    final = (
        home
        / "objects"
        / "checkpoints"
        / "dist-two"
        / f"{STEPS:08d}"
        / "adapter"
        / "adapter_model.safetensors"
    )
    assert _max_diff(load_file(str(final)), w_two) == 0.0
    assert (
        json.loads((tmp_path / "two" / "result.json").read_text())["replica_max_abs_diff"]
        == two["replica_max_abs_diff"]
    )
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        "adapter",
        "config.yaml",
        "result.json",
        "tensorboard",
    ]
