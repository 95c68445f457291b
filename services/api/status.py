"""What the dashboard shows: jobs and progress, queue depths, items by state (the dashboard's
items/min and errors charts are the differences between its polls), synthesis throughput, error
reasons and, apart from them, the notes on items that went on (both of the recent-events window,
``api.metrics_events_window_s``, at most ``api.metrics_events_limit`` events, like
``/metrics``), training curves, UVRB scores per run, the live index version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.config import get_settings
from shared.db import counters, session_scope
from shared.db.models import EvalRun, IndexVersion, Job, JobEvent, TrainingRun, TrainMetric


def _source(params: object) -> str | None:
    """A job's source as stored: params are client data, any shape."""
    value = params.get("source") if isinstance(params, dict) else None
    return value if isinstance(value, str) else None


def _recent_jobs(s: Session, detail: bool) -> list[dict[str, Any]]:
    """The 20 newest jobs with their counters (sources and error texts only with ``detail``)."""
    jobs = []
    for job in s.scalars(select(Job).order_by(Job.created_at.desc()).limit(20)):
        counts = counters.job_counts(s, job.id)  # the job's counters, not a count of items
        jobs.append(
            {
                "id": job.id,
                "kind": job.kind,
                "state": job.state.value,
                "created_at": job.created_at.isoformat(),
                "items": counts,
                "source": _source(job.params) if detail else None,
                "error": job.error if detail else ("failed" if job.error else None),
                "result": job.result,
            }
        )
    return jobs


def _latest_training(
    s: Session,
) -> tuple[TrainingRun | None, list[list[Any]], list[dict[str, Any]]]:
    """The newest training run, its loss curve and every 10th step's task probabilities."""
    run = s.scalars(select(TrainingRun).order_by(TrainingRun.updated_at.desc())).first()
    curve: list[list[Any]] = []
    probs: list[dict[str, Any]] = []
    if run:
        for m in s.scalars(
            select(TrainMetric).where(TrainMetric.run_id == run.id).order_by(TrainMetric.step)
        ):
            curve.append([m.step, m.loss])
            if m.step % 10 == 0:
                probs.append({"step": m.step, "probs": (m.values or {}).get("probs", {})})
    return run, curve, probs


def platform_status(
    queue_depths: dict[str, int | None] | None = None, detail: bool = True
) -> dict[str, Any]:
    """``detail``: job sources and error texts too (they may name server paths)."""
    with session_scope() as s:
        jobs = _recent_jobs(s, detail)
        since = datetime.now(UTC) - timedelta(hours=1)
        done_recent = (
            s.scalar(
                select(func.count())
                .select_from(JobEvent)
                .where(
                    JobEvent.stage == "pairs",
                    JobEvent.state == "done",
                    JobEvent.created_at >= since,
                )
            )
            or 0
        )
        api = get_settings().api  # reasons of the recent-events window, like /metrics
        window, limit = api.metrics_events_window_s, api.metrics_events_limit
        reasons = counters.recent_reasons(s, window, limit, notes=False)
        notes = counters.recent_reasons(s, window, limit, notes=True)
        items = counters.items_by_state(s)
        run, curve, probs = _latest_training(s)
        evals = [
            {
                "id": e.id,
                "model": e.model,
                "adapter": e.adapter,
                "abilities": e.abilities,
                "created_at": e.created_at.isoformat(),
            }
            for e in s.scalars(select(EvalRun).order_by(EvalRun.created_at).limit(50))
        ]
        live = s.scalars(select(IndexVersion).where(IndexVersion.state == "live")).first()
    return {
        "jobs": jobs,
        "queues": queue_depths or {},
        "synth_videos_last_hour": done_recent,
        "items": items,
        "error_reasons": [{"reason": r, "count": c} for r, c in reasons],
        "notes": [{"reason": r, "count": c} for r, c in notes],
        "training": {
            "run": run.id if run else None,
            "sampler": run.sampler if run else None,
            "curve": curve,
            "task_probs": probs,
        },
        "evals": evals,
        "live_index": {"version": live.id, "points": live.points, "avg_a": live.avg_a}
        if live
        else None,
    }
