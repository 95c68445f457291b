"""The trainer service: runs ``trainer.run`` jobs from the train queue as leased, supervised runs
(``shared.supervise``: under torchrun on the GPUs the worker was given); checkpoints emit
``checkpoint.ready`` for the evaluator."""

from __future__ import annotations

from typing import Any

from shared.queue import get_celery
from shared.supervise import run_leased, task_message, train_nproc

app = get_celery()
KIND = "train"


@app.task(name="trainer.run", bind=True)
def run(self, job_id: str, config: dict[str, Any]) -> dict[str, Any]:  # noqa: ANN001
    return run_leased(
        job_id,
        config,
        kind=KIND,
        target="services.trainer.jobs:train_job",
        message=task_message(self),
        nproc=train_nproc(),
    )
