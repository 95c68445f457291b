"""The evaluator service: on ``checkpoint.ready``, score the checkpoint and emit ``eval.completed``
(the indexer's promotion gate); evaluation jobs from the API. Both follow a Job row
(``services.evaluator.jobs``): running, datasets done / total, completed with the eval run and AVG-A,
or failed with the error."""

from __future__ import annotations

from typing import Any

from shared.ids import stable_id
from shared.queue import emit, get_celery

app = get_celery()


def checkpoint_job_id(payload: dict[str, Any]) -> str:
    """The job of a checkpoint's evaluation: the same checkpoint (event delivered again) moves the
    same row."""
    return stable_id("eval-job", payload.get("checkpoint"), payload.get("model"), payload.get("adapter"),
                     payload.get("uvrb"))


@app.task(name="evaluator.on_checkpoint_ready")
def on_checkpoint_ready(event: str, payload: dict[str, Any]) -> dict[str, Any]:
    from services.evaluator.jobs import run_eval_job

    params = {k: payload[k] for k in ("uvrb", "model", "adapter", "datasets", "checkpoint", "run_id", "step")
              if payload.get(k) is not None}
    result = run_eval_job(checkpoint_job_id(payload), params)  # a failure raises: nothing is emitted
    # the adapter as the event named it (a checkpoint's is fetched from the store by whoever needs it:
    # the local copy here is a path on this host only)
    out = {"eval_run_id": result.get("eval_run_id"), "model": result["model"], "adapter": payload.get("adapter"),
           "abilities": result["abilities"], "checkpoint": payload.get("checkpoint")}
    emit("eval.completed", out)
    return out


@app.task(name="evaluator.run")
def run_eval(job_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """An evaluation job from the API: score a model (and adapter) on a UVRB copy."""
    from services.evaluator.jobs import run_eval_job

    result = run_eval_job(job_id, params)
    return {"eval_run_id": result.get("eval_run_id"), "abilities": result["abilities"]}
