"""A training job's run, as the supervisor starts it (every torchrun rank calls ``train_job``):
a takeover after a dead worker resumes from the run's last checkpoint (``train`` resumes by itself:
the run id is derived from the config)."""

from __future__ import annotations

from typing import Any

DROPPED = ("curve", "task_probs")  # long series: in the database and result.json, not on the job


def train_job(job_id: str, config: dict[str, Any]) -> dict[str, Any]:
    from services.trainer.loop import TrainConfig, train

    result = train(TrainConfig(**{**config, "emit_events": True}))
    return {k: v for k, v in result.items() if k not in DROPPED}
