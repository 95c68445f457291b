"""The evaluator service: on ``checkpoint.ready``, score the checkpoint and emit ``eval.completed``
(the indexer's promotion gate); evaluation jobs from the API. Both are leased, supervised runs
(``shared.supervise``) following a Job row (``services.evaluator.jobs``): running, datasets done /
total, completed with the eval run and AVG-A, or failed with the error. A takeover after a dead
worker resumes at its first unscored dataset (``services.evaluator.jobs``)."""

from __future__ import annotations

from typing import Any

from shared.contracts.events import CheckpointReady, EvalCompleted
from shared.ids import stable_id
from shared.queue import emit, get_celery
from shared.supervise import run_leased, task_message

app = get_celery()
KIND = "eval"
TARGET = "services.evaluator.jobs:eval_job"


def checkpoint_job_id(payload: dict[str, Any]) -> str:
    """The job of a checkpoint's evaluation: the same checkpoint (event delivered again) moves the
    same row."""
    return stable_id(
        "eval-job",
        payload.get("checkpoint"),
        payload.get("model"),
        payload.get("adapter"),
        payload.get("uvrb"),
    )


@app.task(name="evaluator.on_checkpoint_ready", bind=True)
def on_checkpoint_ready(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:  # noqa: ANN001
    ready = CheckpointReady.model_validate(payload)
    params = {
        k: v
        for k, v in ready.model_dump().items()
        if k in ("uvrb", "model", "adapter", "datasets", "checkpoint", "run_id", "step")
        and v is not None
    }

    def completed(
        result: dict[str, Any],
    ) -> None:  # a failed run raises in the run: nothing is emitted
        # the adapter as the event named it (a checkpoint's is fetched from the store by whoever
        # needs it: the local copy in the run is a path on that host only)
        done = EvalCompleted(
            eval_run_id=result.get("eval_run_id"),
            model=result["model"],
            adapter=ready.adapter,
            abilities=result["abilities"],
            checkpoint=ready.checkpoint,
        )
        emit("eval.completed", done.model_dump(mode="json"))

    return run_leased(
        checkpoint_job_id(payload),
        params,
        kind=KIND,
        target=TARGET,
        message=task_message(self),
        in_process=True,
        on_done=completed,
    )


@app.task(name="evaluator.run", bind=True)
def run_eval(self, job_id: str, params: dict[str, Any]) -> dict[str, Any]:  # noqa: ANN001
    """An evaluation job from the API: score a model (and adapter) on a UVRB copy."""
    return run_leased(
        job_id, params, kind=KIND, target=TARGET, message=task_message(self), in_process=True
    )
