"""A training run's configuration: what the caller names (snapshot, model, output, run id) and the
training knobs, resolved into one ``TrainSettings`` (presets of recipe values, then Settings, then
the caller's values)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.config import TrainSettings, get_settings

# The tiny bundle learns best with its own recipe (SPEC's lr 3e-5 / τ 0.03 are for 3B/7B models).
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"lr": 1e-3, "temperature": 0.05, "weight_decay": 0.01, "lora_dropout": 0.0,
             "lora_scope": "all", "warmup_steps": 20},
    "gve": {},
}


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
