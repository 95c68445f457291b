"""A training run's configuration: what the caller names (snapshot, model, output, run id) and the
training knobs, resolved into one ``TrainSettings`` in increasing priority: the field defaults,
the preset's recipe values, Settings (YAML file, ``UNIVR_TRAIN__*``: only the fields they set),
then the caller's values (CLI options, a ``--config`` file, ``overrides``: only those given). The
run's length (steps, epochs, steps per epoch) is resolved against its data: ``schedule``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from shared.config import TrainSettings, get_settings

# SPEC §3.5 Table 7 (UVRD): per-GPU batch size and explicit hard negatives per positive, by task.
TABLE7_BATCH = {"T2T": 64, "T2I": 32, "T2V": 64, "TI2V": 64, "TV2V": 64, "I2V": 64, "V2V": 64}
TABLE7_NEGATIVES = {"T2T": 0, "T2I": 0, "T2V": 1, "TI2V": 1, "TV2V": 1, "I2V": 0, "V2V": 0}

# The tiny bundle learns best with its own recipe (SPEC's lr 3e-5 / τ 0.03 are for 3B/7B models).
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "lr": 1e-3,
        "temperature": 0.05,
        "weight_decay": 0.01,
        "lora_dropout": 0.0,
        "lora_scope": "all",
        "warmup_steps": 20,
    },
    "gve": {"task_batch_size": TABLE7_BATCH, "task_hard_negatives": TABLE7_NEGATIVES},
}
# TrainConfig fields that are training knobs (TrainSettings fields); None: not given
KNOB_FIELDS = ("sampler", "steps", "batch_size", "seed", "preset", "heldout_fraction")


@dataclass
class TrainConfig:
    snapshot: str
    model: str = ""
    out: str = "train-out"
    run_id: str = ""
    emit_events: bool = False
    sampler: str | None = None
    steps: int | None = None
    batch_size: int | None = None
    seed: int | None = None
    preset: str | None = None
    heldout_fraction: float | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    def given(self) -> dict[str, Any]:
        """The knobs the caller set: ``overrides``, then the named fields that are not None."""
        out = dict(self.overrides)
        out.update({k: getattr(self, k) for k in KNOB_FIELDS if getattr(self, k) is not None})
        return out

    def train_settings(self) -> TrainSettings:
        return resolve(self.given())


def resolve(given: dict[str, Any]) -> TrainSettings:
    """``TrainSettings`` from the layers (module docstring). A preset's per-task batch sizes give
    way to a ``batch_size`` set above the preset, unless ``task_batch_size`` is set there too."""
    settings = get_settings().train
    explicit = settings.model_dump(include=settings.model_fields_set)
    explicit.update(given)
    unknown = sorted(set(given) - set(TrainSettings.model_fields))
    if unknown:
        raise ValueError(f"unknown training setting(s): {', '.join(unknown)}")
    preset_name = explicit.get("preset", TrainSettings.model_fields["preset"].default)
    if preset_name not in PRESETS:
        raise ValueError(f"unknown preset {preset_name!r}: one of {', '.join(PRESETS)}")
    preset = dict(PRESETS[preset_name])
    if "batch_size" in explicit and "task_batch_size" not in explicit:
        preset.pop("task_batch_size", None)
    return TrainSettings(**{**preset, **explicit})


@dataclass(frozen=True)
class Schedule:
    """The run's length: ``total_steps`` optimisation steps in ``epochs`` epochs of
    ``steps_per_epoch`` (the last epoch takes any steps beyond epochs × steps_per_epoch)."""

    total_steps: int
    epochs: int
    steps_per_epoch: int
    pass_steps: int  # steps of one pass over the task-weighted training data

    def epoch_of(self, step: int) -> int:
        """The 1-based epoch of the 0-based ``step``."""
        return min(step // self.steps_per_epoch + 1, self.epochs)


def pass_steps(task_pairs: dict[str, int], ts: TrainSettings, world: int) -> int:
    """Steps of one pass over the training data: each task's pairs in batches of its global batch
    size (its per-process size × ``world``), summed over tasks."""
    return sum(
        math.ceil(n / (ts.task_batch_size.get(t, ts.batch_size) * world))
        for t, n in task_pairs.items()
        if n
    )


def schedule(ts: TrainSettings, task_pairs: dict[str, int], world: int) -> Schedule:
    """``ts.steps`` > 0 fixes the run's length and, unless ``ts.steps_per_epoch`` is set, its
    ``ts.epochs`` epochs split it evenly (σ ramps over the whole run); ``ts.steps`` 0 runs
    ``ts.epochs`` epochs of ``ts.steps_per_epoch``, 0 meaning one pass over the data."""
    one_pass = max(pass_steps(task_pairs, ts, world), 1)
    epochs = max(ts.epochs, 1)
    if ts.steps_per_epoch:
        per_epoch = ts.steps_per_epoch
    elif ts.steps:
        per_epoch = max(ts.steps // epochs, 1)
    else:
        per_epoch = one_pass
    return Schedule(ts.steps or epochs * per_epoch, epochs, per_epoch, one_pass)
