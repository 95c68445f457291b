"""The evaluator service: on ``checkpoint.ready``, score the checkpoint and emit ``eval.completed``."""

from __future__ import annotations

from typing import Any

from shared.config import get_settings
from shared.queue import emit, get_celery

app = get_celery()


@app.task(name="evaluator.on_checkpoint_ready")
def on_checkpoint_ready(event: str, payload: dict[str, Any]) -> dict[str, Any]:
    from services.evaluator.runner import evaluate

    uvrb = payload.get("uvrb") or str(get_settings().home_path / "uvrb-mini")
    result = evaluate(uvrb, payload.get("model"), payload.get("adapter"))
    out = {"eval_run_id": result.get("eval_run_id"), "model": result["model"], "adapter": result.get("adapter"),
           "abilities": result["abilities"], "checkpoint": payload.get("checkpoint")}
    emit("eval.completed", out)
    return out


@app.task(name="evaluator.run")
def run_eval(job_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """An evaluation job from the API: score a model (and adapter) on a UVRB copy."""
    from services.evaluator.runner import evaluate

    result = evaluate(params.get("uvrb") or str(get_settings().home_path / "uvrb-mini"), params.get("model"), params.get("adapter"))
    return {"eval_run_id": result.get("eval_run_id"), "abilities": result["abilities"]}
