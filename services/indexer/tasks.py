"""The indexer service: build + promote on ``eval.completed`` (the gate is AVG-A), and index jobs."""

from __future__ import annotations

from typing import Any

from shared.queue import get_celery

app = get_celery()


@app.task(name="indexer.on_eval_completed")
def on_eval_completed(event: str, payload: dict[str, Any]) -> dict[str, Any]:
    from services.indexer.build import build_index
    from services.indexer.promote import PromotionRefused, promote

    built = build_index(payload.get("model"), payload.get("adapter"))
    try:
        return {"promoted": True, **promote(built["version"], (payload.get("abilities") or {}).get("AVG_A"))}
    except PromotionRefused as exc:
        return {"promoted": False, "version": built["version"], "reason": str(exc)}


@app.task(name="indexer.build_and_promote")
def build_and_promote(job_id: str, params: dict[str, Any]) -> dict[str, Any]:
    return on_eval_completed("job", params)
