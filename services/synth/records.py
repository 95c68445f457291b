"""Job bookkeeping in the database: items, their state machine, attempts, and the event log a
user reads (`univr synth status`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from shared.db import session_scope
from shared.db.models import ItemState, Job, JobEvent, JobItem, JobState

TERMINAL = (ItemState.done, ItemState.rejected, ItemState.failed)


def log_event(job_id: str, item_id: str | None, stage: str, state: str, reason: str | None = None,
              attempt: int = 0, **detail: Any) -> None:
    with session_scope() as s:
        s.add(JobEvent(job_id=job_id, item_id=item_id, stage=stage, state=state, reason=reason, attempt=attempt,
                       detail=detail))


def begin_attempt(item_id: str, stage: str, lost: list[int] | None = None) -> tuple[JobItem | None, int]:
    """Count one more attempt at ``stage`` before doing any work, so a task that kills its worker
    still counts (a poison item then fails with a reason instead of looping).

    ``lost``: ``[attempt, retry]``, carried by the retry a database outage caused (the task's
    ``retry``-th): that attempt was not the item's fault, so it is taken again instead of counting a
    new one. Once per retry: the item records it under ``result["outage_retry"]``, so a redelivered
    copy of the same retry (its worker was killed) counts as usual."""
    with session_scope() as s:
        item = s.get(JobItem, item_id, with_for_update=True)
        if item is None:
            return None, 0
        token = [stage, *lost] if lost else None
        if (token and item.stage == stage and item.attempts == lost[0]
                and (item.result or {}).get("outage_retry") != token):
            item.result = {**(item.result or {}), "outage_retry": token}
        else:
            if item.stage != stage:
                item.attempts = 0
            item.attempts += 1
        item.stage = stage
        if item.state == ItemState.pending:
            item.state = ItemState.running
        s.flush()
        s.expunge(item)
        return item, item.attempts


def finish_item(item_id: str, state: ItemState, *, reason: str | None = None, stage: str, **result: Any) -> None:
    """The item's end, its event and the job's state in one transaction: a worker killed between
    them used to leave every item finished and the job ``running`` for good."""
    with session_scope() as s:
        item = s.get(JobItem, item_id, with_for_update=True)
        item.state = state
        item.error = reason
        item.stage = stage
        item.result = {**(item.result or {}), **result}
        s.add(JobEvent(job_id=item.job_id, item_id=item_id, stage=stage, state=state.value, reason=reason,
                       detail=result))
        s.flush()
        _refresh(s, item.job_id)


def update_result(item_id: str, **result: Any) -> None:
    with session_scope() as s:
        item = s.get(JobItem, item_id, with_for_update=True)
        item.result = {**(item.result or {}), **result}


def _refresh(s, job_id: str) -> JobState:  # noqa: ANN001
    job = s.get(Job, job_id, with_for_update=True)
    open_items = s.scalar(select(func.count()).select_from(JobItem).where(
        JobItem.job_id == job_id, JobItem.state.not_in(TERMINAL)))
    if job.state in (JobState.pending, JobState.running):
        job.state = JobState.running if open_items else JobState.completed
    return job.state


def refresh_job(job_id: str) -> JobState:
    with session_scope() as s:
        return _refresh(s, job_id)


def job_summary(job_id: str) -> dict[str, Any]:
    with session_scope() as s:
        job = s.get(Job, job_id)
        if job is None:
            raise KeyError(f"no job {job_id}")
        items = s.scalars(select(JobItem).where(JobItem.job_id == job_id).order_by(JobItem.item_key)).all()
        counts: dict[str, int] = {}
        for it in items:
            counts[it.state.value] = counts.get(it.state.value, 0) + 1
        events = s.scalars(select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.reason.is_not(None))
                           .order_by(JobEvent.id)).all()
        reasons: dict[str, list[str]] = {}
        for ev in events:
            if ev.item_id:
                reasons.setdefault(ev.item_id, []).append(f"{ev.stage}: {ev.reason}")
        totals = {k: sum(int((it.result or {}).get(k, 0)) for it in items)
                  for k in ("clips", "frames", "pairs", "clips_rejected", "clips_reencoded")}
        return {
            "job": job.id, "state": job.state.value, "source": job.params.get("source"), "counts": counts, **totals,
            "items": [{"item": it.item_key, "state": it.state.value, "stage": it.stage, "attempts": it.attempts,
                       "clips": (it.result or {}).get("clips", 0),
                       "clips_reencoded": (it.result or {}).get("clips_reencoded", 0), "reason": it.error,
                       "notes": reasons.get(it.id, [])} for it in items],
        }
