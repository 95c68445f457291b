"""The training loop: the shared embedder's backbone with LoRA, single-task batches drawn by the
Modality Pyramid (or uniformly), symmetric InfoNCE with cross-process and hard negatives (with
Gradient Cache when ``train.grad_cache`` is on: services/trainer/gradcache.py), AdamW with
warm-up + cosine decay, checkpoints with exact resume, metrics to the database."""

from __future__ import annotations

import json
import math
import os
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from services.trainer import checkpoint as ckpt
from services.trainer.data import (
    PairBatcher,
    clip_groups,
    heldout,
    load_snapshot,
    side_input,
    to_inputs,
)
from services.trainer.gradcache import grad_cache_backward
from services.trainer.loss import infonce
from services.trainer.mining import mine_for_epoch
from services.trainer.pyramid import TaskSampler, sigma_at
from shared.config import TrainSettings, get_settings
from shared.db import init_db, session_scope, upsert
from shared.db.models import Checkpoint, TrainingRun, TrainMetric
from shared.ids import stable_id
from shared.model import Embedder, EmbedInput

# The tiny bundle learns best with its own recipe (SPEC's lr 3e-5 / τ 0.03 are for 3B/7B models).
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"lr": 1e-3, "temperature": 0.05, "weight_decay": 0.01, "lora_dropout": 0.0, "lora_scope": "all", "warmup_steps": 20},
    "gve": {},
}
LANGUAGE_ONLY = r".*language_model.*\.({names})$"
ALL_BLOCKS = r".*\.({names}|qkv|attn\.proj)$"


@dataclass
class TrainConfig:
    snapshot: str
    model: str = ""
    sampler: str = "pyramid"
    steps: int = 300
    batch_size: int = 16
    seed: int = 42
    out: str = "train-out"
    run_id: str = ""
    preset: str = "gve"
    heldout_fraction: float = 0.1
    emit_events: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)

    def train_settings(self) -> TrainSettings:
        base = get_settings().train.model_dump()
        base.update(PRESETS.get(self.preset, {}))
        base.update(self.overrides)
        base.update(sampler=self.sampler, batch_size=self.batch_size, seed=self.seed)
        return TrainSettings(**{k: v for k, v in base.items() if k in TrainSettings.model_fields})


def _lora(embedder: Embedder, ts: TrainSettings) -> None:
    from peft import LoraConfig, get_peft_model

    names = "|".join(ts.lora_targets)
    pattern = (ALL_BLOCKS if ts.lora_scope == "all" else LANGUAGE_ONLY).format(names=names)
    cfg = LoraConfig(r=ts.lora_r, lora_alpha=ts.lora_alpha, lora_dropout=ts.lora_dropout, target_modules=pattern)
    embedder.model = get_peft_model(embedder.model, cfg)  # freezes everything else (vision tower, embeddings)


def _schedule(opt: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(total - warmup, 1))))

    return torch.optim.lr_scheduler.LambdaLR(opt, f)


def _embed_grad(embedder: Embedder, items: list[EmbedInput]) -> torch.Tensor:
    return embedder.forward(embedder.collate(items))


def forward_backward(embedder: Embedder, q_in: list[EmbedInput], y_in: list[EmbedInput], h_in: list[EmbedInput],
                     groups: list[int], hard_groups: list[int], ts: TrainSettings) -> dict[str, torch.Tensor]:
    """One step's symmetric InfoNCE on this process's inputs; accumulates ∂L/∂θ into ``.grad``
    (zero it before). With ``ts.grad_cache`` the inputs are embedded ``ts.grad_cache_chunk`` at a
    time (Gradient Cache), else each side in one forward. Returns the loss outputs, detached."""
    g = torch.tensor(groups, device=embedder.device)
    hg = torch.tensor(hard_groups, dtype=torch.long, device=embedder.device)

    def loss(q: torch.Tensor, y: torch.Tensor, h: torch.Tensor | None) -> dict[str, torch.Tensor]:
        return infonce(q, y, g, ts.temperature, h, hg if h is not None else None)

    if ts.grad_cache:
        return grad_cache_backward(embedder, [q_in, y_in, h_in], loss, ts.grad_cache_chunk)
    out = loss(_embed_grad(embedder, q_in), _embed_grad(embedder, y_in), _embed_grad(embedder, h_in) if h_in else None)
    out["loss"].backward()
    return {k: v.detach() for k, v in out.items()}


def epoch_prober(epoch: int, ts: TrainSettings, model: Embedder) -> Embedder:
    """The prober Ψ_t of epoch ``epoch`` (SPEC §4.2): the configured off-the-shelf embedder in
    epoch 1 when ``train.prober`` is set, else the model being trained (at the end of epoch t-1)."""
    if epoch == 1 and ts.prober:
        return Embedder(ts.prober, device=str(model.device))
    return model


def probe_pairs(batcher: PairBatcher, n_pairs: int) -> dict[str, list[dict[str, Any]]]:
    """Each task's probe pairs: the same ``n_pairs`` (at most) in every epoch and on every process."""
    out = {}
    for task in batcher.tasks:
        pool = batcher.by_task[task]
        idx = np.random.default_rng(len(pool)).permutation(len(pool))[:n_pairs]
        out[task] = [pool[i] for i in idx]
    return out


@torch.no_grad()
def probe_alignment(embedder: Embedder, batcher: PairBatcher, n_pairs: int, rank: int = 0,
                    world: int = 1) -> dict[str, float]:
    """R_k: mean positive-pair cosine of each task under the current model (SPEC §4.2).

    Under ``world`` processes each scores every ``world``-th probe pair of every task (positions
    ``rank, rank + world, ...``) and the per-pair cosines are all-reduced (SUM: each position is
    filled by exactly one process, zeros elsewhere), so every process averages the same values in
    the same order and gets bit-identical R_k, equal to one process scoring all pairs (up to the
    float rounding of other batch shapes). All processes must call it together."""
    was_training = embedder.model.training
    embedder.model.eval()
    probes = probe_pairs(batcher, n_pairs)
    total = sum(len(pairs) for pairs in probes.values())
    cos = torch.zeros(total, dtype=torch.float64, device=embedder.device)
    offset = 0
    for task, pairs in probes.items():
        mine = list(range(rank, len(pairs), world))
        if mine:
            q, y, *_ = to_inputs([pairs[i] for i in mine], task)
            sims = (embedder.embed(q) * embedder.embed(y)).sum(axis=1)
            cos[[offset + i for i in mine]] = torch.from_numpy(sims).to(cos)
        offset += len(pairs)
    if world > 1:
        torch.distributed.all_reduce(cos)
    out, offset = {}, 0
    for task, pairs in probes.items():
        out[task] = float(cos[offset:offset + len(pairs)].mean()) if pairs else float("nan")
        offset += len(pairs)
    embedder.model.train(was_training)
    return out


def replica_fingerprint(sampler: TaskSampler, batcher: PairBatcher) -> int:
    """A checksum of what decides the next steps' batches: the sampler's task probabilities
    (alignment, σ) and RNG, and the batcher's RNG."""
    state = {"sampler": sampler.state_dict(), "batcher": batcher.state_dict()}
    return zlib.crc32(json.dumps(state, sort_keys=True, default=repr).encode())


def check_replicas_agree(step: int, task: str, sampler: TaskSampler, batcher: PairBatcher, world: int) -> None:
    """Every process must draw the same task and the same global batch each step, from identical
    task probabilities (same sampler and batcher, same seed, all-reduced probe scores): raise if any
    process diverged. One tiny all-gather of (task index, ``replica_fingerprint``) per step."""
    if world == 1:
        return
    mine = torch.tensor([sampler.tasks.index(task), replica_fingerprint(sampler, batcher)], dtype=torch.long)
    if torch.distributed.get_backend() == "nccl":
        mine = mine.cuda()
    every = [torch.zeros_like(mine) for _ in range(world)]
    torch.distributed.all_gather(every, mine)
    if any(not torch.equal(t, every[0]) for t in every):
        raise RuntimeError(f"processes diverged at step {step}: tasks by rank {[sampler.tasks[int(t[0])] for t in every]}, "
                           f"sampler/batcher fingerprints {[int(t[1]) for t in every]}")


def replica_divergence(params: list[torch.nn.Parameter], world: int) -> float:
    """Largest absolute difference of any trainable weight between processes (0.0 for one)."""
    if world == 1:
        return 0.0
    with torch.no_grad():
        hi = torch.cat([p.detach().reshape(-1).float() for p in params])
        lo = hi.clone()
        torch.distributed.all_reduce(hi, op=torch.distributed.ReduceOp.MAX)
        torch.distributed.all_reduce(lo, op=torch.distributed.ReduceOp.MIN)
        return float((hi - lo).max()) if hi.numel() else 0.0


@torch.no_grad()
def embed_shared(embedder: Embedder, items: list[EmbedInput], rank: int = 0, world: int = 1) -> np.ndarray:
    """Embeddings of ``items`` on every process, each process embedding every ``world``-th item
    (rows all-reduced: zeros elsewhere, so every process gets the same matrix). All processes must
    call it together."""
    if world == 1:
        return embedder.embed(items)
    rows = torch.zeros((len(items), embedder.dim), dtype=torch.float32, device=embedder.device)
    mine = list(range(rank, len(items), world))
    if mine:
        rows[mine] = torch.from_numpy(embedder.embed([items[i] for i in mine])).to(rows)
    torch.distributed.all_reduce(rows)
    return rows.cpu().numpy()


@torch.no_grad()
def t2v_heldout(embedder: Embedder, pairs: list[dict[str, Any]], rank: int = 0, world: int = 1) -> tuple[float, float]:
    """Text→video R@1 and symmetric InfoNCE (τ 0.05) over held-out T2V pairs: one query per target
    clip (its shortest caption). Under ``world`` processes each embeds a 1/world share and all get
    the same scores (call it on all of them together)."""
    best: dict[str, dict[str, Any]] = {}
    for p in pairs:
        if p["task"] != "T2V":
            continue
        clip = p["target"]["video"]["clip_id"]
        if clip not in best or len(p["query"]["text"]) < len(best[clip]["query"]["text"]):
            best[clip] = p
    qs = [side_input(p["query"], "Find a video according to the given text.") for p in best.values()]
    ys = [side_input(p["target"], None) for p in best.values()]
    if len(qs) < 2:
        return float("nan"), float("nan")
    was = embedder.model.training
    embedder.model.eval()
    sims = embed_shared(embedder, qs, rank, world) @ embed_shared(embedder, ys, rank, world).T
    embedder.model.train(was)
    logits = torch.from_numpy(sims) / 0.05
    target = torch.arange(len(qs))
    loss = 0.5 * (torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target))
    return float((sims.argmax(axis=1) == np.arange(len(qs))).mean()), float(loss)


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
    torch.manual_seed(ts.seed)
    np.random.seed(ts.seed)
    import random

    random.seed(ts.seed)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    own_group = False
    if distributed and torch.cuda.is_available():  # one GPU per process ("cuda" is the current device)
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if distributed and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        own_group = True
    rank = torch.distributed.get_rank() if distributed else 0
    world = torch.distributed.get_world_size() if distributed else 1
    lead = rank == 0
    if lead:
        init_db()
    snap = load_snapshot(cfg.snapshot)
    train_pairs = [p for p in snap.pairs if not heldout(p["video_id"], cfg.heldout_fraction)]
    eval_pairs = [p for p in snap.pairs if heldout(p["video_id"], cfg.heldout_fraction)]
    # every resolved training knob is in the id, so a run with other overrides never resumes this one
    run_id = cfg.run_id or stable_id("train", cfg.snapshot, cfg.model, cfg.steps, cfg.heldout_fraction,
                                     json.dumps(ts.model_dump(), sort_keys=True, default=str))
    embedder = Embedder(cfg.model or None)
    resolved = {"train": ts.model_dump(), "run": asdict(cfg), "world_size": world,
                "model": embedder.name_or_path, "settings": get_settings().resolved()}
    before, loss_before = t2v_heldout(embedder, eval_pairs, rank, world)
    _lora(embedder, ts)
    embedder.model.train()
    params = [p for p in embedder.model.parameters() if p.requires_grad]
    if distributed:  # the same seed gives the same LoRA init everywhere; make sure of it, as DDP does
        for p in params:
            torch.distributed.broadcast(p.data, src=0)
    opt = torch.optim.AdamW(params, lr=ts.lr, weight_decay=ts.weight_decay)
    sched = _schedule(opt, ts.warmup_steps, cfg.steps)
    # Same seed on every process: the same task and the same global batch, of which each takes its slice.
    batcher = PairBatcher(train_pairs, seed=ts.seed)
    groups_of_clips = clip_groups(snap.pairs)
    sampler = TaskSampler(batcher.tasks, mode=ts.sampler, seed=ts.seed)
    epochs = max(ts.epochs, 1)
    steps_per_epoch = max(cfg.steps // epochs, 1)
    start, curve, probs_log, epoch_done = 0, [], [], 0
    mined_epoch = 0  # the epoch whose prober mined the pairs' hard negatives (train.hard_negative_source)
    resume = ckpt.latest(run_id)
    if resume:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        state = ckpt.load_state(resume["prefix"])
        with __import__("tempfile").TemporaryDirectory() as tmp:
            ckpt.download_adapter(resume["prefix"], tmp)
            set_peft_model_state_dict(embedder.model, load_file(str(Path(tmp) / "adapter_model.safetensors")))
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        sampler.load_state_dict(state["sampler"])
        batcher.load_state_dict(state["batcher"])
        ckpt.set_rng_state(state["rng"])
        start, curve, probs_log, epoch_done = state["step"], state["curve"], state["probs_log"], state["epoch"]
    if lead:
        with session_scope() as s:
            upsert(s, TrainingRun, [{"id": run_id, "snapshot_id": cfg.snapshot, "base_model": embedder.name_or_path,
                                     "sampler": ts.sampler, "config": json.loads(json.dumps(resolved, default=str)),
                                     "state": "running", "step": start}])
    for step in range(start, cfg.steps):
        epoch = min(step // steps_per_epoch + 1, epochs)
        if epoch > epoch_done:  # a new epoch: probe task alignment with the current model
            sampler.sigma = sigma_at(epoch, epochs, step, cfg.steps, ts.sigma_min, ts.sigma_max, ts.sigma_ramp)
            if ts.sampler == "pyramid":
                sampler.alignment = probe_alignment(epoch_prober(epoch, ts, embedder), batcher, ts.probe_pairs,
                                                    rank, world)
            epoch_done = epoch
        elif ts.sigma_ramp == "step":
            sampler.sigma = sigma_at(epoch, epochs, step, cfg.steps, ts.sigma_min, ts.sigma_max, "step")
        if ts.hard_negative_source == "mined" and mined_epoch != epoch:  # re-mined with each epoch's prober
            mined_epoch = mine_for_epoch(train_pairs, epoch_prober(epoch, ts, embedder), ts, run_id, epoch, rank, world)
        task = sampler.draw()
        batch = batcher.local_batch(task, ts.task_batch_size.get(task, ts.batch_size), rank, world)
        check_replicas_agree(step + 1, task, sampler, batcher, world)
        q_in, y_in, h_in, groups, hgroups = to_inputs(batch, task, groups_of_clips)
        opt.zero_grad(set_to_none=True)
        out = forward_backward(embedder, q_in, y_in, h_in, groups, hgroups, ts)
        if distributed:
            for p in params:
                if p.grad is not None:
                    torch.distributed.all_reduce(p.grad)  # SUM: see services/trainer/loss.py
        torch.nn.utils.clip_grad_norm_(params, ts.grad_clip)
        opt.step()
        sched.step()
        loss = float(out["loss"].detach())
        probs = sampler.probabilities()
        curve.append([step + 1, round(loss, 5)])
        probs_log.append({"step": step + 1, "sigma": round(sampler.sigma, 4), "probs": {k: round(v, 4) for k, v in probs.items()}})
        if lead:
            with session_scope() as s:
                upsert(s, TrainMetric, [{"run_id": run_id, "step": step + 1, "task": task, "loss": loss,
                                         "values": {"batch_size": len(batch) * world, "pos_sim": float(out["pos_sim"]), "hardest_neg_sim": float(out["hardest_neg_sim"]),
                                                    "sigma": sampler.sigma, "probs": probs, "alignment": sampler.alignment,
                                                    "lr": sched.get_last_lr()[0]}}], key=("run_id", "step"))
        if lead and ((step + 1) % ts.checkpoint_every == 0 or step + 1 == cfg.steps):
            state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "sampler": sampler.state_dict(),
                     "batcher": batcher.state_dict(), "rng": ckpt.rng_state(), "step": step + 1, "epoch": epoch_done,
                     "curve": curve, "probs_log": probs_log}
            prefix = ckpt.save_checkpoint(run_id, step + 1, embedder.model, state, resolved)
            with session_scope() as s:
                upsert(s, Checkpoint, [{"id": f"{run_id}-{step + 1}", "run_id": run_id, "step": step + 1, "epoch": epoch_done,
                                        "object_prefix": prefix}])
                s.get(TrainingRun, run_id).step = step + 1
            if cfg.emit_events:
                from shared.queue import emit

                emit("checkpoint.ready", {"run_id": run_id, "step": step + 1, "checkpoint": prefix, "model": embedder.name_or_path})
    divergence = replica_divergence(params, world)
    out_dir = Path(cfg.out)
    adapter_dir = out_dir / "adapter"
    after, loss_after = t2v_heldout(embedder, eval_pairs, rank, world)
    result = {"run_id": run_id, "adapter": str(adapter_dir.resolve()), "steps": cfg.steps, "sampler": ts.sampler,
              "world_size": world, "replica_max_abs_diff": divergence,
              "wall_seconds": round(time.perf_counter() - t0, 1), "final_loss": curve[-1][1] if curve else None,
              "heldout_t2v_r1_before": before, "heldout_t2v_r1_after": after,
              "heldout_t2v_loss_before": loss_before, "heldout_t2v_loss_after": loss_after,
              "heldout_queries": len({p["target"]["video"]["clip_id"] for p in eval_pairs if p["task"] == "T2V"}),
              "curve": curve, "task_probs": probs_log[:: max(1, len(probs_log) // 100)]}
    if lead:
        embedder.model.save_pretrained(adapter_dir)
        with session_scope() as s:
            run_row = s.get(TrainingRun, run_id)
            run_row.state, run_row.step = "done", cfg.steps
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "result.json").write_text(json.dumps(result))
    if own_group:
        torch.distributed.barrier()  # every process leaves once rank 0 has written everything
        torch.distributed.destroy_process_group()
    return result
