"""The trainer service: runs ``trainer.run`` jobs from the train queue; checkpoints emit
``checkpoint.ready`` for the evaluator."""

from __future__ import annotations

from typing import Any

from shared.db import session_scope
from shared.db.models import Job, JobState
from shared.queue import get_celery

app = get_celery()


@app.task(name="trainer.run")
def run(job_id: str, config: dict[str, Any]) -> dict[str, Any]:
    from services.trainer.loop import TrainConfig, train

    with session_scope() as s:
        s.get(Job, job_id).state = JobState.running
    try:
        result = train(TrainConfig(**{**config, "emit_events": True}))
    except Exception as exc:
        with session_scope() as s:
            job = s.get(Job, job_id)
            job.state, job.error = JobState.failed, f"{type(exc).__name__}: {exc}"[:1000]
        raise
    with session_scope() as s:
        s.get(Job, job_id).state = JobState.completed
    return {k: v for k, v in result.items() if k not in ("curve", "task_probs")}
