"""SIGKILL the trainer inside a step after a checkpoint, rerun it: the rerun resumes from that
checkpoint (its optimizer, scheduler, sampler and batcher states and its step counter), executes
only the remaining steps, and ends with the same weights, metrics and curve as an uninterrupted run
with the same seed. A rerun that started afresh would also end with the same weights (same seed),
so what proves the resume is what the rerun *did*: tests/integration/trainer/resume_probe.py
reports each process's executed optimizer steps, the optimizer's step counter before its first
step and the sampler's state at its first draw."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from .world_snapshot import build_world_snapshot

ROOT = Path(__file__).resolve().parents[3]
STEPS, EPOCHS, EVERY = 6, 2, 2  # epoch 2 starts at step 4; checkpoints after steps 2, 4 and 6
KILL_AT = 5  # killed inside step 5: checkpoint 4 is complete, step 5's update is lost
LAST_CHECKPOINT = 4


def _run(
    tmp_path: Path, snapshot: str, model: Path, run_id: str, kill_at: int = 0
) -> tuple[int, dict]:
    config = {
        "snapshot": snapshot,
        "model": str(model),
        "steps": STEPS,
        "batch_size": 2,
        "seed": 5,
        "preset": "tiny",
        "heldout_fraction": 0.0,
        "run_id": run_id,
        "out": str(tmp_path / run_id),
        "overrides": {"epochs": EPOCHS, "checkpoint_every": EVERY, "probe_pairs": 4},
    }
    cfg, report = tmp_path / f"{run_id}.json", tmp_path / f"{run_id}-{kill_at}.report.json"
    cfg.write_text(json.dumps(config))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.integration.trainer.resume_probe",
            str(cfg),
            str(report),
            str(kill_at),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(proc.stderr[-3000:])
    return proc.returncode, json.loads(report.read_text())


def _metrics(run_id: str) -> dict[int, tuple]:
    from sqlalchemy import select

    from shared.db import session_scope
    from shared.db.models import TrainMetric

    with session_scope() as s:
        return {
            m.step: (m.task, m.loss, m.values)
            for m in s.scalars(select(TrainMetric).where(TrainMetric.run_id == run_id))
        }


def test_killed_run_resumes_from_its_checkpoint_and_ends_like_an_uninterrupted_one(
    tmp_path, tiny_model_dir
):
    from services.trainer import checkpoint as ckpt

    snapshot = build_world_snapshot(12, seed=4, tasks=("T2V", "T2I"), name="resume")
    code, ref = _run(tmp_path, snapshot, tiny_model_dir, "ref")
    assert code == 0 and ref["optimizer_steps"] == STEPS and ref["resumed_from_step"] == 0

    code, killed = _run(tmp_path, snapshot, tiny_model_dir, "victim", kill_at=KILL_AT)
    assert code == -signal.SIGKILL and killed["optimizer_steps"] == KILL_AT
    latest = ckpt.latest("victim")
    assert latest["step"] == LAST_CHECKPOINT
    saved = ckpt.load_state(latest["prefix"])
    assert set(_metrics("victim")) == set(range(1, KILL_AT))  # step 5 was never recorded

    code, resumed = _run(tmp_path, snapshot, tiny_model_dir, "victim")
    assert code == 0
    # it continued: the optimizer's state (and its step counter) came from the checkpoint, the loop
    # started after it, and the sampler drew from its saved state (alignment, σ, RNG)
    assert resumed["resumed_from_step"] == LAST_CHECKPOINT
    assert resumed["optimizer_steps"] == STEPS - LAST_CHECKPOINT < ref["optimizer_steps"]
    assert resumed["first_draw"] == json.loads(json.dumps(saved["sampler"], default=str))
    assert resumed["first_draw"] != ref["first_draw"]
    # and it ended where the uninterrupted run did: the same weights, per-step metrics (task, loss,
    # lr, σ, task probabilities, probed alignment) and curve
    a = load_file(str(tmp_path / "ref" / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "victim" / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and a
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert _metrics("victim") == _metrics("ref") and len(_metrics("ref")) == STEPS
    assert (
        resumed["result"]["steps"] == STEPS and resumed["result"]["curve"] == ref["result"]["curve"]
    )

    # the merged export of the resumed run embeds like base + adapter
    from services.trainer.export import export_merged
    from shared.model import Embedder, EmbedInput

    merged = export_merged("victim", None, tmp_path / "merged")
    items = [EmbedInput(text="a red circle moving left")]
    adapted = Embedder(str(tiny_model_dir), str(tmp_path / "victim" / "adapter")).embed(items)
    assert float((Embedder(str(merged)).embed(items) * adapted).sum()) > 0.9999
