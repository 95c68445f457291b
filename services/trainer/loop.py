"""The training run, top to bottom: set up (seeds, processes, data, LoRA, optimizer, sampler),
resume from the latest checkpoint, then per step: the epoch's probe, a task drawn by the Modality
Pyramid (or uniformly), one single-task batch, symmetric InfoNCE with cross-process and hard
negatives (Gradient Cache when ``train.grad_cache``), AdamW, bookkeeping; at the end the held-out
check and the adapter. The parts live in services/trainer: runconfig (knobs), setup, probe, step,
heldout, bookkeeping, checkpoint."""

from __future__ import annotations

import json
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import torch

from services.trainer import checkpoint as ckpt
from services.trainer.bookkeeping import (
    announce_start,
    log_step,
    record_metric,
    resolved_config,
    save_checkpoint,
    write_result,
)
from services.trainer.data import to_inputs
from services.trainer.heldout import embed_shared, heldout_queries, t2v_heldout
from services.trainer.mining import mine_for_epoch
from services.trainer.probe import (
    check_replicas_agree,
    epoch_prober,
    probe_alignment,
    probe_pairs,
    replica_divergence,
    replica_fingerprint,
)
from services.trainer.progress import TrainProgress
from services.trainer.pyramid import sigma_at
from services.trainer.runconfig import PRESETS, Schedule, TrainConfig, schedule
from services.trainer.setup import (
    Dist,
    RunData,
    TrainState,
    _lora,
    _schedule,
    build_state,
    load_run_data,
    seed_everything,
    setup_distributed,
)
from services.trainer.step import all_reduce_grads, forward_backward, limit_hard_negatives
from services.trainer.tracking import NoTracker, Tracker, open_tracker
from shared.config import TrainSettings
from shared.db import init_db
from shared.db.lease import report_progress
from shared.ids import stable_id
from shared.model import Embedder

__all__ = [
    "PRESETS",
    "TrainConfig",
    "_lora",
    "_schedule",
    "check_replicas_agree",
    "embed_shared",
    "epoch_prober",
    "forward_backward",
    "probe_alignment",
    "probe_pairs",
    "replica_divergence",
    "replica_fingerprint",
    "t2v_heldout",
    "train",
]


NOT_IN_RUN_ID = {"shard_cache"}  # knobs that do not change what a run computes


def run_id_for(cfg: TrainConfig, ts: TrainSettings) -> str:
    """Every resolved training knob is in the id, so a run with other overrides never resumes
    this one."""
    knobs = json.dumps(ts.model_dump(exclude=NOT_IN_RUN_ID), sort_keys=True, default=str)
    return cfg.run_id or stable_id("train", cfg.snapshot, cfg.model, knobs)


def begin_epoch(
    state: TrainState, ts: TrainSettings, plan: Schedule, dist: Dist, epoch: int
) -> None:
    """Once per epoch, at its first step: σ of the epoch, and the prober Ψ_t of the epoch probes
    each task's alignment (pyramid). Per-epoch work that needs the prober (e.g. re-mining hard
    negatives with it) belongs here."""
    sampler = state.sampler
    sampler.sigma = sigma_at(
        epoch, plan.epochs, state.step, plan.total_steps, ts.sigma_min, ts.sigma_max, ts.sigma_ramp
    )
    if ts.sampler == "pyramid":
        prober = epoch_prober(epoch, ts, state.embedder)
        sampler.alignment = probe_alignment(
            prober, state.batcher, ts.probe_pairs, dist.rank, dist.world
        )
    state.epoch_done = epoch


def begin_step(state: TrainState, ts: TrainSettings, plan: Schedule, dist: Dist) -> None:
    """A new epoch begins (``begin_epoch``); within an epoch under the per-step ramp, σ of the
    step."""
    epoch = plan.epoch_of(state.step)
    if epoch > state.epoch_done:
        begin_epoch(state, ts, plan, dist, epoch)
    elif ts.sigma_ramp == "step":
        state.sampler.sigma = sigma_at(
            epoch, plan.epochs, state.step, plan.total_steps, ts.sigma_min, ts.sigma_max, "step"
        )


def mine_negatives(
    state: TrainState, ts: TrainSettings, plan: Schedule, data: RunData, dist: Dist, run_id: str
) -> None:
    """With ``train.hard_negative_source=mined``: the epoch's prober mines each training pair's
    hard negatives once per epoch (after a resume too: a stored epoch's negatives are read back)."""
    epoch = plan.epoch_of(state.step)
    if ts.hard_negative_source != "mined" or state.mined_epoch == epoch:
        return
    prober = epoch_prober(epoch, ts, state.embedder)
    state.mined_epoch = mine_for_epoch(
        data.train_pairs, prober, ts, run_id, epoch, dist.rank, dist.world, state.mining_spread
    )


def train_step(
    state: TrainState, ts: TrainSettings, data: RunData, dist: Dist
) -> tuple[str, float, dict[str, Any], int]:
    """Draw a task and this process's slice of its global batch, forward, backward (gradients
    summed over processes), clip, update. Returns (task, loss, loss outputs, global batch size)."""
    task = state.sampler.draw()  # a unit: a task, or a dataset (train.pyramid_unit)
    kind = state.batcher.task_of(task)
    size = data.batch_size(ts, task, kind)
    batch = state.batcher.local_batch(task, size, dist.rank, dist.world)
    check_replicas_agree(state.step + 1, task, state.sampler, state.batcher, dist.world)
    batch = limit_hard_negatives(batch, data.hard_negatives(ts, task, kind))
    q_in, y_in, h_in, groups, hgroups = to_inputs(batch, kind, data.groups_of_clips)
    state.opt.zero_grad(set_to_none=True)
    out = forward_backward(state.embedder, q_in, y_in, h_in, groups, hgroups, ts)
    if dist.distributed:
        all_reduce_grads(state.params)
    torch.nn.utils.clip_grad_norm_(state.params, ts.grad_clip)
    state.opt.step()
    state.sched.step()
    state.step += 1
    return task, float(out["loss"].detach()), out, len(batch) * dist.world


def step_scalars(
    state: TrainState, loss: float, out: dict[str, Any], global_batch: int
) -> dict[str, float]:
    """What a step sends to the tracker."""
    probs = state.sampler.probabilities()
    return {
        "train/loss": loss,
        "train/lr": float(state.sched.get_last_lr()[0]),
        "train/sigma": state.sampler.sigma,
        "train/pos_sim": float(out["pos_sim"]),
        "train/hardest_neg_sim": float(out["hardest_neg_sim"]),
        "train/global_batch": global_batch,
        **{f"task_prob/{t}": p for t, p in probs.items()},
    }


def open_reporting(
    cfg: TrainConfig, ts: TrainSettings, run_id: str, resolved: dict[str, Any], dist: Dist
) -> Tracker:
    """The run's tracker (rank 0; the others track nothing)."""
    if not dist.lead:
        return NoTracker()
    logdir = Path(ts.logdir) if ts.logdir else Path(cfg.out) / "tensorboard"
    return open_tracker(ts.report_to, logdir, run_id, {**ts.model_dump(), **resolved["schedule"]})


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Train under one process or under torchrun (``WORLD_SIZE`` > 1; gloo on CPU, nccl on GPU).

    Every process builds the same sampler and batcher from the same seed, so all draw the same task
    and the same global batch of ``batch_size × world`` each step and take their slice (checked
    every step: ``check_replicas_agree``); the prober's probe pairs are shared out and its scores
    all-reduced, so every process gets the same task probabilities. Gradients are all-reduced, so
    a run under N processes follows the one-process run on the concatenated batches. Only rank 0
    writes: the run row, metrics, checkpoints, the adapter and result.json. The held-out evaluation
    and the probing are shared out the same way (each process embeds a 1/world share)."""
    t0 = time.perf_counter()
    ts = cfg.train_settings()
    seed_everything(ts.seed)
    dist = setup_distributed()
    if dist.lead:
        init_db()
    data = load_run_data(cfg.snapshot, ts.heldout_fraction, ts.shard_cache)
    plan = schedule(ts, data.task_pairs(), dist.world)
    run_id = run_id_for(cfg, ts)
    embedder = Embedder(cfg.model or None)
    resolved = resolved_config(cfg, ts, plan, dist.world, embedder.name_or_path)
    tracker = open_reporting(cfg, ts, run_id, resolved, dist)  # fails before any work if absent
    before = t2v_heldout(embedder, data.eval_pairs, dist.rank, dist.world)
    state = build_state(embedder, ts, plan.total_steps, data.train_pairs, dist)
    resumed = ckpt.resume(state, run_id)
    if dist.lead:
        announce_start(cfg, ts, plan, run_id, embedder.name_or_path, resolved, state.step, resumed)
    bar = TrainProgress(plan.total_steps, state.step, ts.log_every_s, quiet=not dist.lead)
    with closing(tracker), bar:
        bar.note(
            f"run {run_id}: {plan.total_steps} steps, {plan.epochs} epochs of "
            f"{plan.steps_per_epoch} (one pass: {plan.pass_steps}); from step {state.step}; "
            f"tracking: {ts.report_to} {tracker.where}"
        )
        while state.step < plan.total_steps:
            begin_step(state, ts, plan, dist)
            mine_negatives(state, ts, plan, data, dist, run_id)
            task, loss, out, global_batch = train_step(state, ts, data, dist)
            log_step(state, task, loss)
            if not dist.lead:
                continue
            scalars = step_scalars(state, loss, out, global_batch)
            tracker.log(state.step, scalars)
            bar.update(
                state.step, global_batch, loss, scalars["train/lr"], state.sampler.sigma, task
            )
            record_metric(run_id, state, task, loss, out, global_batch)
            # a supervised job's row (shared.supervise); else nothing
            report_progress(step=state.step)
            if state.step % ts.checkpoint_every == 0 or state.step == plan.total_steps:
                save_checkpoint(run_id, state, resolved, cfg.emit_events)
        result = finish(cfg, ts, state, data, dist, run_id, before, t0)
        tracker.log(
            state.step,
            {
                "heldout/t2v_r1": result["heldout_t2v_r1_after"],
                "heldout/t2v_loss": result["heldout_t2v_loss_after"],
            },
        )
    return result


def finish(
    cfg: TrainConfig,
    ts: TrainSettings,
    state: TrainState,
    data: RunData,
    dist: Dist,
    run_id: str,
    before: tuple[float, float],
    t0: float,
) -> dict[str, Any]:
    """The held-out check after training, the result, and (rank 0) the adapter and result.json;
    then every process leaves the group together."""
    divergence = replica_divergence(state.params, dist.world)
    out_dir = Path(cfg.out)
    after = t2v_heldout(state.embedder, data.eval_pairs, dist.rank, dist.world)
    curve = state.curve
    result = {
        "run_id": run_id,
        "adapter": str((out_dir / "adapter").resolve()),
        "steps": state.step,
        "sampler": ts.sampler,
        "world_size": dist.world,
        "replica_max_abs_diff": divergence,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "final_loss": curve[-1][1] if curve else None,
        "heldout_t2v_r1_before": before[0],
        "heldout_t2v_r1_after": after[0],
        "heldout_t2v_loss_before": before[1],
        "heldout_t2v_loss_after": after[1],
        "heldout_queries": heldout_queries(data.eval_pairs),
        "curve": curve,
        "task_probs": state.probs_log[:: max(1, len(state.probs_log) // 100)],
        "mining_spread": state.mining_spread,  # per epoch and task (mined negatives only)
    }
    if dist.lead:
        write_result(run_id, state, out_dir, result)
    if dist.own_group:
        torch.distributed.barrier()  # every process leaves once rank 0 has written everything
        torch.distributed.destroy_process_group()
    return result
