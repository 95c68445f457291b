"""The indexer service's tasks: build + promote on ``eval.completed`` (gated on AVG-A), and index
jobs submitted through the API (their Job row follows the work)."""

from __future__ import annotations

from typing import Any

from shared.queue import get_celery

app = get_celery()


@app.task(name="indexer.on_eval_completed")
def on_eval_completed(event: str, payload: dict[str, Any]) -> dict[str, Any]:
    from services.indexer.pipeline import index_and_promote

    return index_and_promote(payload)


@app.task(name="indexer.build_and_promote")
def build_and_promote(job_id: str, params: dict[str, Any]) -> dict[str, Any]:
    from services.indexer.pipeline import run_job

    return run_job(job_id, params)
