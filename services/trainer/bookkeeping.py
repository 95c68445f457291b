"""What a run writes (rank 0 only): its row, one metric row per step, checkpoints (with their rows
and ``checkpoint.ready`` events), and at the end the adapter and result.json."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from services.trainer import checkpoint as ckpt
from services.trainer.runconfig import Schedule, TrainConfig
from services.trainer.setup import TrainState
from shared.config import TrainSettings, get_settings
from shared.db import session_scope, upsert
from shared.db.lease import report_progress
from shared.db.models import Checkpoint, TrainingRun, TrainMetric
from shared.model.portable import save_adapter


def record_start(
    run_id: str, snapshot: str, model: str, sampler: str, resolved: dict[str, Any], step: int
) -> None:
    config = json.loads(json.dumps(resolved, default=str))
    with session_scope() as s:
        upsert(
            s,
            TrainingRun,
            [
                {
                    "id": run_id,
                    "snapshot_id": snapshot,
                    "base_model": model,
                    "sampler": sampler,
                    "config": config,
                    "state": "running",
                    "step": step,
                }
            ],
        )


def log_step(state: TrainState, task: str, loss: float) -> None:
    """The step's loss and the sampler's σ and probabilities in the run's curve (saved with
    checkpoints, returned in the result)."""
    probs = state.sampler.probabilities()
    state.curve.append([state.step, round(loss, 5)])
    state.probs_log.append(
        {
            "step": state.step,
            "sigma": round(state.sampler.sigma, 4),
            "probs": {k: round(v, 4) for k, v in probs.items()},
        }
    )


def record_metric(
    run_id: str, state: TrainState, task: str, loss: float, out: dict[str, Any], global_batch: int
) -> None:
    values = {
        "batch_size": global_batch,
        "pos_sim": float(out["pos_sim"]),
        "hardest_neg_sim": float(out["hardest_neg_sim"]),
        "sigma": state.sampler.sigma,
        "probs": state.sampler.probabilities(),
        "alignment": state.sampler.alignment,
        "lr": state.sched.get_last_lr()[0],
    }
    with session_scope() as s:
        upsert(
            s,
            TrainMetric,
            [{"run_id": run_id, "step": state.step, "task": task, "loss": loss, "values": values}],
            key=("run_id", "step"),
        )


def save_checkpoint(
    run_id: str, state: TrainState, resolved: dict[str, Any], emit_events: bool
) -> str:
    """Checkpoint the run at ``state.step``: objects, the checkpoint row, the run's step, and
    ``checkpoint.ready`` when events are on."""
    step, epoch = state.step, state.epoch_done
    prefix = ckpt.save_checkpoint(
        run_id,
        step,
        state.embedder.model,
        ckpt.training_state(state, epoch),
        resolved,
        state.embedder.name_or_path,
    )
    with session_scope() as s:
        upsert(
            s,
            Checkpoint,
            [
                {
                    "id": f"{run_id}-{step}",
                    "run_id": run_id,
                    "step": step,
                    "epoch": epoch,
                    "object_prefix": prefix,
                }
            ],
        )
        s.get_one(TrainingRun, run_id).step = step
    if emit_events:
        from shared.queue import emit

        emit(
            "checkpoint.ready",
            {
                "run_id": run_id,
                "step": step,
                "checkpoint": prefix,
                "model": state.embedder.name_or_path,
            },
        )
    return prefix


def write_result(run_id: str, state: TrainState, out: Path, result: dict[str, Any]) -> None:
    """The adapter and result.json under ``out``; the run row marked done."""
    save_adapter(state.embedder.model, out / "adapter", state.embedder.name_or_path)
    with session_scope() as s:
        run_row = s.get_one(TrainingRun, run_id)
        run_row.state, run_row.step = "done", state.step
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result))


def resolved_config(
    cfg: TrainConfig, ts: TrainSettings, plan: Schedule, world: int, model: str
) -> dict[str, Any]:
    """What a run records as its configuration (result.json, the run row, the tracker)."""
    return {
        "train": ts.model_dump(),
        "schedule": asdict(plan),
        "run": asdict(cfg),
        "world_size": world,
        "model": model,
        "settings": get_settings().resolved(),
    }


def announce_start(
    cfg: TrainConfig,
    ts: TrainSettings,
    plan: Schedule,
    run_id: str,
    model: str,
    resolved: dict[str, Any],
    step: int,
    resumed: bool,
) -> None:
    """The run row and the supervised job's first progress (rank 0 only)."""
    record_start(run_id, cfg.snapshot, model, ts.sampler, resolved, step)
    report_progress(
        step=step,
        steps=plan.total_steps,
        run_id=run_id,
        **({"resumed_from": step} if resumed else {}),
    )
