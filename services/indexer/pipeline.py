"""Build-then-promote, as the indexer service runs it: on ``eval.completed`` and for index jobs.

The AVG-A gate is checked before anything is built (a model that is not better than the live one
costs nothing); a finished collection of the same model, adapter and scope is reused, not rebuilt;
the eval run that scored the version is recorded with it; a job's row moves pending → running →
completed | failed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.db import init_db, session_scope
from shared.db.jobs import describe_error, set_job_state
from shared.db.models import EvalRun, JobState
from shared.storage import checkpoint_adapter

AVG_A = "AVG_A"
KIND = "index"


def _avg_a(params: dict[str, Any]) -> float | None:
    """AVG-A from the params (``abilities.AVG_A`` as the evaluator emits it, or ``avg_a``), else
    from the eval run they name."""
    value = (params.get("abilities") or {}).get(AVG_A, params.get("avg_a"))
    if value is None and params.get("eval_run_id"):
        with session_scope() as s:
            run = s.get(EvalRun, str(params["eval_run_id"]))
            value = (run.abilities or {}).get(AVG_A) if run else None
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"AVG-A must be a number, got {value!r}") from None


def index_and_promote(
    params: dict[str, Any], *, build: Callable[..., dict] | None = None, client=None
) -> dict[str, Any]:  # noqa: ANN001
    """``params``: model, adapter (or checkpoint: a store prefix), source, dataset, version,
    eval_run_id, abilities/avg_a, force. The gate (services/indexer/promote.py) refuses a version
    without AVG-A, or not better than the live one, unless ``force``."""
    from services.indexer.build import build_index
    from services.indexer.promote import PromotionRefused, gate, promote

    init_db()
    avg_a, force = _avg_a(params), bool(params.get("force"))
    eval_run_id = params.get("eval_run_id")
    try:
        gate(
            params.get("version") or "", avg_a, force
        )  # before building: a worse model costs nothing
    except PromotionRefused as exc:
        return {
            "promoted": False,
            "built": False,
            "reason": str(exc),
            "avg_a": avg_a,
            "eval_run_id": eval_run_id,
        }
    adapter = params.get("adapter") or None
    if adapter is None and params.get(
        "checkpoint"
    ):  # eval.completed of a checkpoint: its adapter, from the store
        adapter = str(checkpoint_adapter(params["checkpoint"]))
    built = (build or build_index)(
        params.get("model"),
        adapter,
        params.get("version"),
        client=client,
        source=params.get("source"),
        dataset=params.get("dataset"),
    )
    # what this run embedded (a resumed build: only the points after its last upserted batch)
    work = {"reused": built.get("reused", False), "embedded": built.get("embedded")}
    try:
        result = promote(built["version"], avg_a, force, client=client, eval_run_id=eval_run_id)
        return {"promoted": True, "built": True, **work, "eval_run_id": eval_run_id, **result}
    except PromotionRefused as exc:
        return {
            "promoted": False,
            "built": True,
            **work,
            "version": built["version"],
            "reason": str(exc),
            "eval_run_id": eval_run_id,
        }


def run_job(job_id: str, params: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """An index job: its row (created by the API as pending; created here if another client sent
    the task) moves running → completed (with the reason when nothing was promoted) | failed."""
    from functools import partial

    from services.indexer.build import build_index

    set_job_state(job_id, JobState.running, kind=KIND, params=params)
    kwargs.setdefault("build", partial(build_index, progress=_points))
    try:
        result = index_and_promote(params, **kwargs)
    except Exception as exc:
        set_job_state(job_id, JobState.failed, kind=KIND, error=describe_error(exc))
        raise
    set_job_state(
        job_id,
        JobState.completed,
        kind=KIND,
        error=None if result["promoted"] else result.get("reason"),
        result=result,
    )
    return result


def _points(done: int, total: int) -> None:
    from shared.db.lease import report_progress

    report_progress(points=done, points_total=total)


def promotion_job(job_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """``eval.completed``'s build and promotion as a supervised run (``shared.supervise``)."""
    from functools import partial

    from services.indexer.build import build_index

    return index_and_promote(params, build=partial(build_index, progress=_points))
