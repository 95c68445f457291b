"""Setting a run up: seeds, the process group, the data split, LoRA on the embedder, the optimizer
with its warm-up + cosine schedule, the task sampler and the batcher, gathered in ``TrainState``
(everything a checkpoint saves and a resume restores)."""

from __future__ import annotations

import math
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from services.trainer.data import GroupLookup, PairBatcher, open_snapshot
from services.trainer.pairindex import PairView
from services.trainer.pyramid import TaskSampler
from shared.config import TrainSettings
from shared.model import Embedder

LANGUAGE_ONLY = r".*language_model.*\.({names})$"
ALL_BLOCKS = r".*\.({names}|qkv|attn\.proj)$"


@dataclass
class Dist:
    """This process's place in the run: rank, world size, and whether it opened the group."""

    rank: int = 0
    world: int = 1
    own_group: bool = False

    @property
    def lead(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


@dataclass
class RunData:
    """The snapshot's pairs split by source video (views read on demand: ``data.open_snapshot``),
    and its clip → group map (hard negatives)."""

    train_pairs: PairView
    eval_pairs: PairView
    groups_of_clips: GroupLookup
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)  # the manifest's datasets

    def batch_size(self, ts: TrainSettings, unit: str, task: str) -> int:
        """A unit's batch size: ``train.task_batch_size`` of the unit; else, where per-task sizes
        are in force (the gve recipe), the one a dataset unit's import recorded, else its task
        type's; else ``train.batch_size``."""
        sizes = ts.task_batch_size
        recorded = (self.datasets.get(unit) or {}).get("batch_size") if sizes else None
        return int(sizes.get(unit) or recorded or sizes.get(task, ts.batch_size))

    def hard_negatives(self, ts: TrainSettings, unit: str, task: str) -> int | None:
        """Hard negatives per pair, resolved as ``batch_size`` (None: all the pairs carry)."""
        counts = ts.task_hard_negatives
        if unit in counts:
            return counts[unit]
        recorded = (self.datasets.get(unit) or {}).get("hard_negatives") if counts else None
        return int(recorded) if recorded is not None else counts.get(task)

    def task_pairs(self) -> dict[str, int]:
        """Training pairs per task (what one epoch passes over)."""
        return self.train_pairs.task_counts()


@dataclass
class TrainState:
    """What moves during a run; ``step`` is the number of steps done."""

    embedder: Embedder
    params: list[torch.nn.Parameter]
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    sampler: TaskSampler
    batcher: PairBatcher
    step: int = 0
    epoch_done: int = 0
    mined_epoch: int = 0  # the epoch whose prober mined the pairs' hard negatives (0: none yet)
    # per mined epoch and task: how far the mined negatives are from the positives (mining_spread)
    mining_spread: dict[int, Any] = field(default_factory=dict)
    curve: list[list[float]] = field(default_factory=list)
    probs_log: list[dict[str, Any]] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def setup_distributed() -> Dist:
    """Join the process group under torchrun (``WORLD_SIZE`` > 1; gloo on CPU, nccl on GPU)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Dist()
    if torch.cuda.is_available():  # one GPU per process ("cuda" is the current device)
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    own_group = False
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        own_group = True
    return Dist(torch.distributed.get_rank(), torch.distributed.get_world_size(), own_group)


def load_run_data(snapshot: str, heldout_fraction: float, cache_groups: int = 16) -> RunData:
    """The run's data from one streaming pass over the snapshot (``data.open_snapshot``): the
    pairs of the held-out source videos (``heldout``) on one side, the rest on the other; pairs are
    read when a batch, the probe or the held-out check needs them."""
    snap = open_snapshot(snapshot, cache_groups)
    held = snap.pairs.compact.heldout(heldout_fraction)
    datasets = dict(snap.manifest.get("datasets") or {})
    groups = snap.pairs.compact.clip_groups
    return RunData(snap.pairs.subset(~held), snap.pairs.subset(held), groups, datasets)


def _lora(embedder: Embedder, ts: TrainSettings) -> None:
    from peft import LoraConfig, get_peft_model

    names = "|".join(ts.lora_targets)
    pattern = (ALL_BLOCKS if ts.lora_scope == "all" else LANGUAGE_ONLY).format(names=names)
    cfg = LoraConfig(
        r=ts.lora_r, lora_alpha=ts.lora_alpha, lora_dropout=ts.lora_dropout, target_modules=pattern
    )
    # freezes everything else (vision tower, embeddings)
    embedder.model = get_peft_model(embedder.model, cfg)


def _schedule(
    opt: torch.optim.Optimizer, warmup: int, total: int
) -> torch.optim.lr_scheduler.LambdaLR:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        frac = min(1.0, (step - warmup) / max(total - warmup, 1))
        return 0.5 * (1 + math.cos(math.pi * frac))

    return torch.optim.lr_scheduler.LambdaLR(opt, f)


def build_state(
    embedder: Embedder,
    ts: TrainSettings,
    total_steps: int,
    train_pairs: Sequence[dict[str, Any]],
    dist: Dist,
) -> TrainState:
    """LoRA on ``embedder`` (the same initial weights on every process), AdamW with its schedule,
    and the sampler and batcher, seeded alike everywhere: every process draws the same task and the
    same global batch, of which each takes its slice."""
    _lora(embedder, ts)
    embedder.model.train()
    params = [p for p in embedder.model.parameters() if p.requires_grad]
    if dist.distributed:  # the same seed gives the same LoRA init everywhere; as DDP, make sure
        for p in params:
            torch.distributed.broadcast(p.data, src=0)
    opt = torch.optim.AdamW(params, lr=ts.lr, weight_decay=ts.weight_decay)
    sched = _schedule(opt, ts.warmup_steps, total_steps)
    batcher = PairBatcher(train_pairs, seed=ts.seed, unit=ts.pyramid_unit)
    sampler = TaskSampler(batcher.tasks, mode=ts.sampler, seed=ts.seed)
    return TrainState(embedder, params, opt, sched, sampler, batcher)
