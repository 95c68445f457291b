"""Leases on long jobs (train, eval, index build): which worker runs a job, until when.

A job message is short; the worker that receives it *claims* the Job row: one conditional UPDATE
that succeeds only while the job is pending or running and nobody holds an unexpired lease. So a
duplicate delivery of the same message (a redelivery, a second submit, a takeover message sent by
two workers) runs nothing twice: the second claim is refused. The holder renews the lease with each
heartbeat; a renewal that matches no row tells it the job was cancelled or taken over (then it
stops its run). A worker that dies stops renewing: once the lease has expired, a worker of that
kind re-sends the job's message (``expired``) and whoever claims it resumes the run.

Every write is conditional on the owner, so a worker that lost its lease cannot overwrite the
state the new holder writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import and_, or_, select, update

from shared.db.jobs import error_text
from shared.db.models import Job, JobState, utcnow
from shared.db.session import init_db, session_scope
from shared.db.upsert import upsert

if TYPE_CHECKING:
    from sqlalchemy import CursorResult, Result

LIVE = (JobState.pending, JobState.running)


def _rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE matched (its result is a CursorResult; ``Session.execute`` says Result)."""
    return cast("CursorResult[Any]", result).rowcount


@dataclass(frozen=True)
class Claim:
    """A claim's answer: ``granted``, else why not (the job's state, its current owner)."""

    granted: bool
    state: JobState | None
    owner: str | None
    attempts: int = 0


def _expiry(lease_s: float) -> datetime:
    return utcnow() + timedelta(seconds=lease_s)


def claim(
    job_id: str,
    owner: str,
    *,
    kind: str,
    lease_s: float,
    params: dict[str, Any] | None = None,
    message: dict[str, Any] | None = None,
) -> Claim:
    """Take the job's lease for ``lease_s`` seconds if it is free (never held, or expired) and the
    job is pending or running. The row is created (pending) if no client created it. ``message``:
    the task message that runs the job, kept so a takeover can send it again."""
    init_db()
    now = utcnow()
    with session_scope() as s:
        upsert(
            s,
            Job,
            [
                {
                    "id": job_id,
                    "kind": kind,
                    "state": JobState.pending,
                    "params": params or {},
                    "attempts": 0,
                    "progress": {},
                }
            ],
            update=[],
        )
        values: dict[str, Any] = {
            "owner": owner,
            "heartbeat_at": now,
            "lease_expires_at": _expiry(lease_s),
            "state": JobState.running,
            "attempts": Job.attempts + 1,
            "updated_at": now,
        }
        if message is not None:
            values["message"] = message
        hit = _rowcount(
            s.execute(
                update(Job)
                .where(
                    Job.id == job_id,
                    Job.state.in_(LIVE),
                    or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now),
                )
                .values(**values)
            )
        )
        row = s.execute(select(Job.state, Job.owner, Job.attempts).where(Job.id == job_id)).one()
    return Claim(bool(hit), JobState(row.state), row.owner, row.attempts or 0)


def renew(
    job_id: str, owner: str, *, lease_s: float, progress: dict[str, Any] | None = None
) -> bool:
    """The heartbeat: extend the lease (and record ``progress``, merged into the row's). False when
    the job is no longer this owner's to run (cancelled, taken over after an expiry, finished)."""
    now = utcnow()
    with session_scope() as s:
        job = s.execute(
            select(Job)
            .where(Job.id == job_id, Job.owner == owner, Job.state == JobState.running)
            .with_for_update()
        ).scalar_one_or_none()
        if job is None:
            return False
        job.heartbeat_at, job.lease_expires_at, job.updated_at = now, _expiry(lease_s), now
        if progress:
            job.progress = {**(job.progress or {}), **progress}
    return True


def finish(
    job_id: str,
    owner: str,
    state: JobState,
    *,
    result: dict[str, Any] | None = None,
    error: BaseException | str | None = None,
) -> bool:
    """End the job as ``state`` and drop the lease, if this owner still holds it (False: it was
    cancelled or taken over meanwhile, and the row is left as the other party wrote it)."""
    values: dict[str, Any] = {
        "state": state,
        "error": error_text(error),
        "lease_expires_at": None,
        "updated_at": utcnow(),
    }
    if result is not None:
        values["result"] = result
    with session_scope() as s:
        return bool(
            _rowcount(
                s.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.owner == owner, Job.state == JobState.running)
                    .values(**values)
                )
            )
        )


def release(job_id: str, owner: str) -> None:
    """Give the lease up without ending the job (a worker shutting down): another may claim it."""
    with session_scope() as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id, Job.owner == owner, Job.state == JobState.running)
            .values(lease_expires_at=utcnow())
        )


def cancel(job_id: str, reason: str = "cancelled by the user") -> JobState | None:
    """Mark a pending or running job cancelled (its holder stops the run at its next heartbeat);
    returns the job's state after the call, None for an unknown job."""
    init_db()
    with session_scope() as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id, Job.state.in_(LIVE))
            .values(
                state=JobState.cancelled,
                error=error_text(reason),
                lease_expires_at=None,
                updated_at=utcnow(),
            )
        )
        state = s.execute(select(Job.state).where(Job.id == job_id)).scalar_one_or_none()
    return JobState(state) if state is not None else None


def state_of(job_id: str) -> JobState | None:
    with session_scope() as s:
        state = s.execute(select(Job.state).where(Job.id == job_id)).scalar_one_or_none()
    return JobState(state) if state is not None else None


def expired(kinds: tuple[str, ...], limit: int = 100) -> list[tuple[str, dict[str, Any] | None]]:
    """Live jobs of ``kinds`` whose lease ran out (their worker died): (job id, task message)."""
    now = utcnow()
    with session_scope() as s:
        rows = s.execute(
            select(Job.id, Job.message)
            .where(
                Job.kind.in_(kinds),
                Job.state == JobState.running,
                and_(Job.lease_expires_at.is_not(None), Job.lease_expires_at < now),
            )
            .order_by(Job.lease_expires_at)
            .limit(limit)
        ).all()
    return [(r.id, r.message) for r in rows]


def take_resend(job_id: str, *, every_s: float) -> bool:
    """Whether the caller re-sends this expired job's message now: at most once per ``every_s``
    over every sweeper of every worker (the re-send writes the row's ``updated_at``; one
    conditional UPDATE wins), so workers that are busy while the job waits in their queue do not
    pile up copies of its message. A copy that got lost is sent again ``every_s`` later."""
    now = utcnow()
    with session_scope() as s:
        hit = _rowcount(
            s.execute(
                update(Job)
                .where(
                    Job.id == job_id,
                    Job.state == JobState.running,
                    Job.lease_expires_at < now,
                    Job.updated_at < now - timedelta(seconds=every_s),
                )
                .values(updated_at=now)
            )
        )
    return bool(hit)


def log(
    job_id: str, state: str, *, attempt: int = 0, reason: str | None = None, **detail: Any
) -> None:
    """One line of the job's lease timeline (claimed, refused, expired, resumed, ...): job show."""
    from shared.db.models import JobEvent

    with session_scope() as s:
        s.add(
            JobEvent(
                job_id=job_id,
                item_id=None,
                stage="lease",
                state=state,
                reason=reason,
                attempt=attempt,
                detail=detail,
            )
        )


class JobStopped(Exception):
    """Raised at a progress report of an in-process run whose job was cancelled or taken over."""


_current: dict[str, Any] = {"job_id": None, "owner": None, "stop": False}


def set_current(job_id: str | None, owner: str | None) -> None:
    """The job this process runs in-process (``shared.supervise``), for ``report_progress``."""
    _current.update(job_id=job_id, owner=owner, stop=False)


def stop_current() -> None:
    _current["stop"] = True


def report_progress(**progress: Any) -> None:
    """From inside a supervised run (a child with ``UNIVR_JOB_ID`` / ``UNIVR_JOB_OWNER`` in its
    environment, or an in-process run): merge ``progress`` (step, dataset, points) into the job's
    row while the lease is this run's; an in-process run that was cancelled stops here
    (``JobStopped``). Outside a supervised run it does nothing."""
    import os

    if _current["stop"]:
        raise JobStopped(f"job {_current['job_id']} was cancelled or taken over")
    job_id = _current["job_id"] or os.environ.get("UNIVR_JOB_ID")
    owner = _current["owner"] or os.environ.get("UNIVR_JOB_OWNER")
    if not job_id or not owner:
        return
    with session_scope() as s:
        job = s.execute(
            select(Job).where(Job.id == job_id, Job.owner == owner)
        ).scalar_one_or_none()
        if job is None:
            return
        job.progress = {**(job.progress or {}), **progress}
        attempt = job.attempts or 0
    if "resumed_from" in progress:
        log(job_id, "resumed", attempt=attempt, owner=owner, step=progress["resumed_from"])
    elif "resumed" in progress:
        log(job_id, "resumed", attempt=attempt, owner=owner, **progress["resumed"])


def report_resume(**where: Any) -> None:
    """From inside a supervised run that picked up where an earlier attempt stopped: record the
    resume point (``dataset``/``skipped`` of an evaluation, ``points``/``batch`` of an index build)
    on the job's row (``progress.resumed``) and as a ``resumed`` line of its timeline."""
    report_progress(resumed=where)
