"""How a service moves the Job row a user follows (API ``GET /v1/jobs/{id}``, the dashboard):
pending → running → completed | failed, with the error a user reads and the job's result; progress
as one JobItem per unit of work (a UVRB dataset of an eval job), each pending → running → done |
failed, so the job shows "units done / total" while it runs.

Every write is an upsert: a job submitted by another client (no row yet) gets its row here, and a
task delivered twice moves the same row again. Every job state change goes through
``set_job_state``, and every error a user reads through ``error_text`` (one policy: the exception's
type and message, cut at ``ERROR_CHARS``). Leases of long jobs: ``shared.db.lease``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, overload

from sqlalchemy.orm import Session

from shared.db.counters import TERMINAL, job_counts
from shared.db.models import ItemState, Job, JobItem, JobState, utcnow
from shared.db.session import init_db, session_scope
from shared.db.upsert import upsert
from shared.ids import stable_id

ERROR_CHARS = 2000


def describe_error(exc: BaseException) -> str:
    """The error a user reads on a failed job: the exception's type and message."""
    return f"{type(exc).__name__}: {exc}"


@overload
def error_text(error: BaseException) -> str: ...
@overload
def error_text(error: str | None) -> str | None: ...
def error_text(error: BaseException | str | None) -> str | None:
    """The one policy for the error text a job or item shows: an exception as its type and message,
    any text cut at ``ERROR_CHARS``; None stays None."""
    if error is None:
        return None
    text = describe_error(error) if isinstance(error, BaseException) else str(error)
    return text[:ERROR_CHARS] or None


def set_job_state(
    job_id: str,
    state: JobState,
    *,
    kind: str,
    error: BaseException | str | None = None,
    params: dict[str, Any] | None = None,
    result: dict[str, Any] | None = None,
) -> None:
    """Move a job's row to ``state`` (created, of ``kind`` and with ``params``, if it does not
    exist yet). ``error`` replaces the previous one (None clears it); ``result`` is kept when not
    given."""
    init_db()
    row: dict[str, Any] = {
        "id": job_id,
        "kind": kind,
        "state": state,
        "error": error_text(error),
        "updated_at": utcnow(),
    }
    update = ["state", "error", "updated_at"]
    if params is not None:
        row["params"] = params
    if result is not None:
        row["result"] = result
        update.append("result")
    with session_scope() as s:
        upsert(s, Job, [row], update=update)


def item_id(job_id: str, key: str) -> str:
    return stable_id(job_id, key)


def open_items(job_id: str, keys: Iterable[str]) -> None:
    """One pending item per unit of work (a re-run of the job starts them over)."""
    rows: list[dict[str, Any]] = [
        {
            "id": item_id(job_id, k),
            "job_id": job_id,
            "item_key": k,
            "state": ItemState.pending,
            "stage": None,
            "attempts": 0,
            "error": None,
            "result": {},
        }
        for k in keys
    ]
    with session_scope() as s:
        upsert(s, JobItem, rows, update=["state", "stage", "error", "result"])


def set_item_state(
    job_id: str,
    key: str,
    state: ItemState,
    *,
    stage: str | None = None,
    error: BaseException | str | None = None,
    result: dict[str, Any] | None = None,
) -> None:
    """Move one unit of work; ``running`` counts an attempt."""
    with session_scope() as s:
        item = s.get(JobItem, item_id(job_id, key))
        if item is None:
            item = JobItem(
                id=item_id(job_id, key), job_id=job_id, item_key=key, attempts=0, result={}
            )
            s.add(item)
        item.state, item.error = state, error_text(error)
        item.stage = stage or item.stage
        if state == ItemState.running:
            item.attempts = (item.attempts or 0) + 1
        if result is not None:
            item.result = {**(item.result or {}), **result}


def job_progress(session: Session, job_id: str) -> dict[str, int] | None:
    """``{"done": items ended, "total": items}`` of a job, or None when it has no items: read from
    the job's counters (``shared.db.counters``, a few rows), never by counting its items."""
    counts = job_counts(session, job_id)
    total = sum(counts.values())
    if not total:
        return None
    return {
        "done": sum(n for st, n in counts.items() if st in TERMINAL),
        "total": total,
    }
