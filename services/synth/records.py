"""Job bookkeeping in the database: items, their state machine, attempts, and the event log a
user reads (`univr synth status`). Work per item is O(1): the per-job counters by state follow
every item change in its own transaction (database triggers, ``shared.db.counters``), the change
in an item's result values goes to its job's sums as each stage records them, and a reader takes
counters, the newest errors and one page of items, never every item."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from shared.db import counters, session_scope
from shared.db.models import ItemState, Job, JobEvent, JobItem, JobState

TERMINAL = (ItemState.done, ItemState.rejected, ItemState.failed)
TOTALS = ("clips", "frames", "pairs", "clips_rejected", "clips_reencoded")  # summed over items
ITEMS_PAGE = 1000  # items a summary lists unless asked otherwise
RECENT_ERRORS = 20
VARIANT = "v:"  # sums of pairs by task and variant: job_counts rows sum:v:<task>:<variant>


def log_event(
    job_id: str,
    item_id: str | None,
    stage: str,
    state: str,
    reason: str | None = None,
    attempt: int = 0,
    **detail: Any,
) -> None:
    with session_scope() as s:
        s.add(
            JobEvent(
                job_id=job_id,
                item_id=item_id,
                stage=stage,
                state=state,
                reason=reason,
                attempt=attempt,
                detail=detail,
            )
        )


def begin_attempt(
    item_id: str, stage: str, lost: list[int] | None = None, order: tuple[str, ...] = ()
) -> tuple[JobItem | None, int]:
    """Count one more attempt at ``stage`` before doing any work, so a task that kills its worker
    still counts (a poison item then fails with a reason instead of looping).

    ``lost``: ``[attempt, retry]``, carried by the retry a database outage caused (the task's
    ``retry``-th): that attempt was not the item's fault, so it is taken again instead of counting a
    new one. Once per retry: the item records it under ``result["outage_retry"]``, so a redelivered
    copy of the same retry (its worker was killed) counts as usual.

    ``order``: the stages in the order they run. A stage the item has already passed (a redelivered
    message of a stage that ended: its worker died before the ack), or any stage of an item that
    has ended, changes nothing and returns attempt 0."""
    with session_scope() as s:
        item = s.get(JobItem, item_id, with_for_update=True)
        if item is None:
            return None, 0
        if item.state in TERMINAL or _passed(item.stage, stage, order):
            s.expunge(item)
            return item, 0
        token = [stage, *lost] if lost else None
        if (
            lost
            and token
            and item.stage == stage
            and item.attempts == lost[0]
            and (item.result or {}).get("outage_retry") != token
        ):
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


def _passed(current: str | None, stage: str, order: tuple[str, ...]) -> bool:
    return current in order and stage in order and order.index(current) > order.index(stage)


def complete_stage(
    job_id: str,
    item_id: str,
    stage: str,
    attempt: int,
    result: dict[str, Any],
    next_stage: str | None,
) -> bool:
    """A stage's end, once: under the item's row lock, only the attempt that holds the stage (the
    item is at ``stage``, its ``attempt`` the newest, not finished) merges its result, logs ``done``
    and moves the item to ``next_stage`` (attempts from 0), or, after the last stage, ends it as
    done with its job's sums and state. Returns False for any other run of the stage (a duplicate
    delivery that ran beside it or after it): its work is the same and is not recorded twice, and
    it must not send the next stage."""
    with session_scope() as s:
        item = s.get_one(JobItem, item_id, with_for_update=True)
        if item.state in TERMINAL or item.stage != stage or item.attempts != attempt:
            return False
        _merge(s, item, result)
        s.add(JobEvent(job_id=job_id, item_id=item_id, stage=stage, state="done", attempt=attempt))
        if next_stage is not None:
            item.stage, item.attempts = next_stage, 0
            return True
        item.state, item.error = ItemState.done, None
        s.add(JobEvent(job_id=job_id, item_id=item_id, stage=stage, state=ItemState.done.value))
        s.flush()
        _refresh(s, job_id)
        return True


def finish_item(
    item_id: str, state: ItemState, *, reason: str | None = None, stage: str, **result: Any
) -> None:
    """The item's end, its event, its job's sums and the job's state in one transaction: a worker
    killed between them used to leave every item finished and the job ``running`` for good."""
    with session_scope() as s:
        item = s.get_one(JobItem, item_id, with_for_update=True)
        item.state = state
        item.error = reason
        item.stage = stage
        _merge(s, item, result)
        s.add(
            JobEvent(
                job_id=item.job_id,
                item_id=item_id,
                stage=stage,
                state=state.value,
                reason=reason,
                detail=result,
            )
        )
        s.flush()
        _refresh(s, item.job_id)


def update_result(item_id: str, **result: Any) -> None:
    with session_scope() as s:
        item = s.get_one(JobItem, item_id, with_for_update=True)
        _merge(s, item, result)


def _merge(s, item: JobItem, result: dict[str, Any]) -> None:  # noqa: ANN001
    """Merge a stage's result into the item's (under the item's row lock) and add what changed in
    the summed values (``TOTALS`` and the pairs by variant) to its job's sums: a stage run again
    adds nothing."""
    old = item.result or {}
    item.result = {**old, **result}
    delta = {k: int(result.get(k) or 0) - int(old.get(k) or 0) for k in TOTALS if k in result}
    if "pairs_by_variant" in result:
        new_v, old_v = variant_sums(result), variant_sums(old)
        delta.update({k: new_v.get(k, 0) - old_v.get(k, 0) for k in {*new_v, *old_v}})
    counters.add_sums(s, item.job_id, delta)


def variant_sums(result: dict[str, Any]) -> dict[str, int]:
    """An item result's pairs by task and variant as sum names (``VARIANT``<task>:<variant>)."""
    by_task = result.get("pairs_by_variant") or {}
    return {
        f"{VARIANT}{task}:{v}"[:60]: int(n) for task, by in by_task.items() for v, n in by.items()
    }


def _refresh(s, job_id: str) -> JobState:  # noqa: ANN001
    """Complete the job when no item is open: the job row's lock orders the last two finishers,
    and the counters (a handful of rows) say what is open."""
    job = s.get(Job, job_id, with_for_update=True)
    if job.state in (JobState.pending, JobState.running):
        job.state = JobState.running if counters.open_count(s, job_id) else JobState.completed
    return job.state


def refresh_job(job_id: str) -> JobState:
    with session_scope() as s:
        return _refresh(s, job_id)


def is_done(job_id: str) -> bool:
    with session_scope() as s:
        job = s.get(Job, job_id)
        return job is not None and job.state in (
            JobState.completed,
            JobState.failed,
            JobState.cancelled,
        )


def job_progress(job_id: str) -> dict[str, Any]:
    """State and counters of a job (what ``run()`` polls): a few rows, however many items."""
    with session_scope() as s:
        job = s.get(Job, job_id)
        if job is None:
            raise KeyError(f"no job {job_id}")
        counts = counters.job_counts(s, job_id)
        return {
            "job": job.id,
            "state": job.state.value,
            "counts": counts,
            "total": sum(counts.values()),
        }


def recent_jobs(limit: int = 20, state: str | None = None) -> list[dict[str, Any]]:
    """The newest synthesis jobs (``limit``, of ``state`` if given) with their item counts by
    state and result sums: read from the per-job counters, one query for all of them, never a
    scan of items."""
    with session_scope() as s:
        q = select(Job).where(Job.kind == "synth").order_by(Job.created_at.desc(), Job.id)
        if state:
            q = q.where(Job.state == JobState(state))
        jobs = s.scalars(q.limit(limit)).all()
        by_job = counters.counts_of_jobs(s, [j.id for j in jobs])
        out = []
        for j in jobs:
            counts, sums = by_job.get(j.id, ({}, {}))
            out.append(
                {
                    "job": j.id,
                    "state": j.state.value,
                    "source": (j.params or {}).get("source"),
                    "created": j.created_at.isoformat() if j.created_at else None,
                    "updated": j.updated_at.isoformat() if j.updated_at else None,
                    "counts": counts,
                    "total": sum(counts.values()),
                    **{k: sums.get(k, 0) for k in ("clips", "pairs")},
                }
            )
        return out


def job_summary(
    job_id: str,
    *,
    limit: int = ITEMS_PAGE,
    state: str | None = None,
    after: str | None = None,
    errors: int = RECENT_ERRORS,
) -> dict[str, Any]:
    """Counters, sums and the newest errors of a job, and one page of its items (``limit`` items
    by key after ``after``, of ``state`` if given; ``next`` is the key to page on from)."""
    with session_scope() as s:
        job = s.get(Job, job_id)
        if job is None:
            raise KeyError(f"no job {job_id}")
        counts, sums = counters.job_counts(s, job_id), counters.job_sums(s, job_id)
        q = select(JobItem).where(JobItem.job_id == job_id).order_by(JobItem.item_key).limit(limit)
        if state:
            q = q.where(JobItem.state == ItemState(state))
        if after:
            q = q.where(JobItem.item_key > after)
        items = s.scalars(q).all() if limit > 0 else []
        notes = counters.item_notes(s, [it.id for it in items])
        variants = _variants(sums)
        return {
            "job": job.id,
            "state": job.state.value,
            "source": job.params.get("source"),
            "counts": counts,
            "total": sum(counts.values()),
            **{k: sums.get(k, 0) for k in TOTALS},
            "variants": variants,
            "errors": counters.recent_errors(s, job_id, errors),
            "items": [
                {
                    "item": it.item_key,
                    "state": it.state.value,
                    "stage": it.stage,
                    "attempts": it.attempts,
                    "clips": (it.result or {}).get("clips", 0),
                    "clips_reencoded": (it.result or {}).get("clips_reencoded", 0),
                    "reason": it.error,
                    "notes": notes.get(it.id, []),
                }
                for it in items
            ],
            "next": items[-1].item_key if limit > 0 and len(items) == limit else None,
        }


def _variants(sums: dict[str, int]) -> dict[str, dict[str, int]]:
    """The job's pairs by task and variant (caption style, TI2V strategy, TV2V relation): the sums
    kept as each item's pairs step recorded them (``variant_sums``), a handful of counter rows."""
    out: dict[str, dict[str, int]] = {}
    for key, n in sums.items():
        if key.startswith(VARIANT) and n:
            task, _, v = key.removeprefix(VARIANT).partition(":")
            out.setdefault(task, {})[v] = n
    return {t: dict(sorted(v.items())) for t, v in sorted(out.items())}
