"""The indexer service's tasks: build + promote on ``eval.completed`` (gated on AVG-A), and index
jobs submitted through the API; both are leased, supervised runs (``shared.supervise``) whose Job
row follows the work. A takeover after a dead worker resumes the build after its last upserted
batch (``services.indexer.build``)."""

from __future__ import annotations

from typing import Any

from shared.contracts.events import EvalCompleted
from shared.ids import stable_id
from shared.queue import get_celery
from shared.supervise import run_leased, task_message

app = get_celery()
KIND = "index"


def promotion_job_id(payload: dict[str, Any]) -> str:
    """The job of an eval's promotion: the same event delivered again moves the same row."""
    return stable_id(
        "index-job",
        payload.get("eval_run_id"),
        payload.get("model"),
        payload.get("adapter"),
        payload.get("checkpoint"),
    )


@app.task(name="indexer.on_eval_completed", bind=True)
def on_eval_completed(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:  # noqa: ANN001
    params = EvalCompleted.model_validate(payload).model_dump(mode="json")
    return run_leased(
        promotion_job_id(payload),
        params,
        kind=KIND,
        target="services.indexer.pipeline:promotion_job",
        message=task_message(self),
        in_process=True,
    )


@app.task(name="indexer.build_and_promote", bind=True)
def build_and_promote(self, job_id: str, params: dict[str, Any]) -> dict[str, Any]:  # noqa: ANN001
    return run_leased(
        job_id,
        params,
        kind=KIND,
        target="services.indexer.pipeline:run_job",
        message=task_message(self),
        in_process=True,
    )
