"""Bounded reads of job bookkeeping, for the readers a user or a scraper calls often
(``univr synth status``, a job's completion, ``/metrics``): per-job counters by item state
(``job_counts``, kept by triggers on ``job_items``, migration 0005) and sums of item results
(``sum:<name>`` rows, changed by what an item's stage changed), the newest errors of a job, and a
recent window of events (indexed on time). None of them reads a row per item or per event beyond
the limits given."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.db.models import ItemState, JobCount, JobEvent, utcnow
from shared.db.upsert import upsert

# event states that annotate an item that went on (services/synth/tasks.py ``_log_notes``): a
# re-encoded copy, a rectified raw caption; a reader shows them apart from rejections and errors
NOTE_STATES = ("reencoded", "rectified")
SUM = "sum:"  # job_counts rows that hold a sum of item results, not a state's item count
TERMINAL = (ItemState.done.value, ItemState.rejected.value, ItemState.failed.value)


def job_counts(s: Session, job_id: str) -> dict[str, int]:
    """Items of one job by state (states with none left out)."""
    rows = s.execute(select(JobCount.state, JobCount.n).where(JobCount.job_id == job_id)).all()
    return {st: int(n) for st, n in rows if n and not st.startswith(SUM)}


def counts_of_jobs(
    s: Session, job_ids: Iterable[str]
) -> dict[str, tuple[dict[str, int], dict[str, int]]]:
    """``(counts by state, sums)`` of several jobs in one query (a list of jobs)."""
    ids = list(job_ids)
    out: dict[str, tuple[dict[str, int], dict[str, int]]] = {j: ({}, {}) for j in ids}
    if not ids:
        return out
    rows = s.execute(
        select(JobCount.job_id, JobCount.state, JobCount.n).where(JobCount.job_id.in_(ids))
    ).all()
    for job_id, st, n in rows:
        counts, sums = out[job_id]
        if st.startswith(SUM):
            sums[st.removeprefix(SUM)] = int(n)
        elif n:
            counts[st] = int(n)
    return out


def job_sums(s: Session, job_id: str) -> dict[str, int]:
    """The sums of ended items' results kept for one job (``add_sums``)."""
    rows = s.execute(
        select(JobCount.state, JobCount.n).where(
            JobCount.job_id == job_id, JobCount.state.startswith(SUM)
        )
    ).all()
    return {st.removeprefix(SUM): int(n) for st, n in rows}


def open_count(s: Session, job_id: str) -> int:
    return sum(n for st, n in job_counts(s, job_id).items() if st not in TERMINAL)


def add_sums(s: Session, job_id: str, values: dict[str, int]) -> None:
    """Add (signed) changes of an item's result values to its job's sums, in the caller's
    transaction (the one that changes the item's result)."""
    rows = [
        {"job_id": job_id, "state": f"{SUM}{k}", "n": int(v)}
        for k, v in sorted(values.items())
        if v
    ]
    if not rows:
        return
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]  # same API
    stmt = insert(JobCount).values(rows)
    s.execute(
        stmt.on_conflict_do_update(
            index_elements=["job_id", "state"], set_={"n": JobCount.n + stmt.excluded.n}
        )
    )


def items_by_state(s: Session) -> dict[str, int]:
    """Items of every job by state (one row per job and state read, never per item)."""
    rows = s.execute(
        select(JobCount.state, func.sum(JobCount.n))
        .where(~JobCount.state.startswith(SUM))
        .group_by(JobCount.state)
    ).all()
    return {st: int(n or 0) for st, n in rows}


def recent_errors(s: Session, job_id: str, n: int) -> list[dict[str, Any]]:
    """The ``n`` newest events of a job that carry a reason (index on job id, id)."""
    evs = s.scalars(
        select(JobEvent)
        .where(JobEvent.job_id == job_id, JobEvent.reason.is_not(None))
        .order_by(JobEvent.id.desc())
        .limit(n)
    ).all()
    return [
        {
            "item_id": e.item_id,
            "stage": e.stage,
            "state": e.state,
            "reason": e.reason,
            "at": e.created_at.isoformat() if e.created_at else None,
        }
        for e in evs
    ]


def item_notes(s: Session, item_ids: Iterable[str]) -> dict[str, list[str]]:
    """``stage: reason`` of the events of these items (one page of items), oldest first."""
    ids = list(item_ids)
    if not ids:
        return {}
    out: dict[str, list[str]] = {}
    for ev in s.scalars(
        select(JobEvent)
        .where(JobEvent.item_id.in_(ids), JobEvent.reason.is_not(None))
        .order_by(JobEvent.id)
    ):
        if ev.item_id is not None:  # always: the query selects by item id
            out.setdefault(ev.item_id, []).append(f"{ev.stage}: {ev.reason}")
    return out


def recent_events(s: Session, window_s: float, limit: int) -> dict[tuple[str, str], int]:
    """Events of the last ``window_s`` seconds by (stage, state), at most the ``limit`` newest
    (index on ``created_at``): a scrape reads a bounded slice, however long the log."""
    newest = (
        select(JobEvent.stage, JobEvent.state)
        .where(JobEvent.created_at >= utcnow() - timedelta(seconds=window_s))
        .order_by(JobEvent.created_at.desc())
        .limit(limit)
        .subquery()
    )
    rows = s.execute(
        select(newest.c.stage, newest.c.state, func.count()).group_by(
            newest.c.stage, newest.c.state
        )
    ).all()
    return {(stage, state): int(n) for stage, state, n in rows}


def recent_reasons(
    s: Session, window_s: float, limit: int, notes: bool, top: int = 12
) -> list[tuple[str, int]]:
    """The ``top`` most frequent reasons among the events of the last ``window_s`` seconds (at
    most the ``limit`` newest that carry a reason, index on ``created_at``): of rejections and
    errors, or (``notes``) of the notes on items that went on (``NOTE_STATES``)."""
    is_note = JobEvent.state.in_(NOTE_STATES)
    newest = (
        select(JobEvent.reason)
        .where(
            JobEvent.created_at >= utcnow() - timedelta(seconds=window_s),
            JobEvent.reason.is_not(None),
            is_note if notes else ~is_note,
        )
        .order_by(JobEvent.created_at.desc())
        .limit(limit)
        .subquery()
    )
    n = func.count()
    rows = s.execute(
        select(newest.c.reason, n).group_by(newest.c.reason).order_by(n.desc()).limit(top)
    ).all()
    return [(str(r), int(c)) for r, c in rows]


def set_counts(s: Session, job_id: str, counts: dict[str, int]) -> None:
    """Overwrite a job's counters (a repair or a bulk load that bypassed the triggers)."""
    upsert(
        s,
        JobCount,
        [{"job_id": job_id, "state": k, "n": v} for k, v in counts.items()],
        key=("job_id", "state"),
    )


__all__ = [
    "NOTE_STATES",
    "SUM",
    "TERMINAL",
    "add_sums",
    "counts_of_jobs",
    "item_notes",
    "items_by_state",
    "job_counts",
    "job_sums",
    "open_count",
    "recent_errors",
    "recent_events",
    "recent_reasons",
    "set_counts",
]
