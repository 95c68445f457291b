"""Celery tasks of the pipeline: ``synth.media`` (media queue) → ``synth.caption`` (caption queue)
→ ``synth.pairs`` (io queue), one chain per source video; a web source's chain starts with
``synth.io_download`` (io queue: its file into the store, ``services.synth.download``). Each task
counts its attempt in the database first, so a task that crashes or kills its worker is retried a
bounded number of times and then fails with a reason; a bad input ends the chain as ``rejected``
with its reason."""

from __future__ import annotations

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import InterfaceError, OperationalError

from services.synth import records, stages
from services.synth.sources import SourceItem
from shared.config import get_settings
from shared.db import init_db
from shared.db.jobs import error_text
from shared.db.models import ItemState
from shared.queue import get_celery, route_for

app = get_celery()
STAGES = stages.STAGES


ORDER = ("download", *STAGES)


def _after(stage: str) -> str | None:
    return ORDER[ORDER.index(stage) + 1] if stage != ORDER[-1] else None


def _next(stage: str, job_id: str, item_id: str) -> None:
    nxt = _after(stage)
    if nxt:
        name = f"synth.{nxt}"
        app.send_task(name, args=[job_id, item_id], queue=route_for(name))


def _log_notes(job_id: str, item_id: str, stage: str, result: dict, attempt: int) -> None:
    """The notes of a finished stage that `univr synth status` shows."""
    if stage == "media" and result.get("copy_fallback"):
        records.log_event(
            job_id, item_id, "media", "reencoded", result["copy_fallback"], attempt=attempt
        )
    if stage == "caption" and result.get("raw_caption_dropped"):
        records.log_event(job_id, item_id, "caption", "rectified", result["raw_caption_dropped"])


def _run(
    task,
    stage: str,
    job_id: str,
    item_id: str,
    lost: list[int] | None = None,  # noqa: ANN001
    counted: dict | None = None,
) -> None:
    init_db()
    max_attempts = get_settings().broker.max_attempts
    item, attempt = records.begin_attempt(item_id, stage, lost, ORDER)
    if counted is not None:
        counted["attempt"] = attempt  # an outage from here on gives this attempt back (_guarded)
    if item is None:
        return  # unknown: nothing to do
    if item.state in records.TERMINAL:
        # a redelivered duplicate; the job's state is settled all the same
        records.refresh_job(job_id)
        return
    if attempt == 0:  # a redelivered duplicate of a stage that ended (records.complete_stage)
        if item.stage == _after(stage) and item.attempts == 0:
            # the next stage never began: the worker that ended this one may have died before
            # sending it; sent again (were it sent already, only one of the two ends it)
            _next(stage, job_id, item_id)
        return
    if attempt > max_attempts:
        records.finish_item(
            item_id,
            ItemState.failed,
            stage=stage,
            reason=(
                f"gave up after {max_attempts} attempts at {stage}: {item.error or 'worker lost'}"
            ),
        )
        return
    records.log_event(job_id, item_id, stage, "started", attempt=attempt)
    src = SourceItem(**item.result["source"])
    if item.result.get("raw_key"):  # a web source, downloaded: media reads it from the store
        src.extra = {**src.extra, "raw_key": item.result["raw_key"]}
    video_id = item.result["video_id"]
    try:
        result = stages.run_stage(stage, src, video_id, item.result.get("source_id"))
        _log_notes(job_id, item_id, stage, result, attempt)
    except stages.Rejected as exc:
        records.finish_item(item_id, ItemState.rejected, stage=stage, reason=str(exc))
        return
    except SoftTimeLimitExceeded:
        _retry(task, job_id, item_id, stage, attempt, "time limit exceeded")
        return
    except (OperationalError, InterfaceError):
        # the database is unreachable: not the item's fault, retried by _guarded without an attempt
        raise
    except Exception as exc:  # noqa: BLE001 - any other error is retried, then recorded
        _retry(task, job_id, item_id, stage, attempt, error_text(exc))
        return
    kept = {k: v for k, v in result.items() if not isinstance(v, dict) or k == "pairs_by_task"}
    if records.complete_stage(job_id, item_id, stage, attempt, kept, _after(stage)):
        _next(stage, job_id, item_id)


def _retry(task, job_id: str, item_id: str, stage: str, attempt: int, reason: str) -> None:  # noqa: ANN001
    from sqlalchemy import update

    from shared.db import session_scope
    from shared.db.models import JobItem

    with session_scope() as s:
        s.execute(update(JobItem).where(JobItem.id == item_id).values(error=reason))
    records.log_event(job_id, item_id, stage, "error", reason, attempt=attempt)
    if attempt >= get_settings().broker.max_attempts:
        records.finish_item(
            item_id,
            ItemState.failed,
            stage=stage,
            reason=f"failed after {attempt} attempts: {reason}",
        )
        return
    app.send_task(
        task.name, args=[job_id, item_id], queue=route_for(task.name), countdown=min(2**attempt, 30)
    )


def _guarded(task, stage: str, job_id: str, item_id: str, lost: list[int] | None = None) -> None:  # noqa: ANN001
    """Run a stage; while the database is unreachable (a restart, a fail-over) the task is retried
    with exponential backoff instead of failing, which would ack its message and strand the item.
    An outage does not spend the item's attempts: when it came after the attempt was counted, the
    retry carries that attempt and its own number (``lost``) and takes the attempt again
    (``records.begin_attempt``)."""
    counted: dict = {}
    try:
        _run(task, stage, job_id, item_id, lost, counted)
    except (OperationalError, InterfaceError) as exc:
        b = (
            get_settings().broker
        )  # the engine's pre-ping replaces dead pooled connections on the next try
        retries = task.request.retries or 0
        lost = [counted["attempt"], retries + 1] if counted.get("attempt") else lost
        raise task.retry(
            exc=exc,
            countdown=min(2**retries, b.outage_backoff_max_s),
            max_retries=b.outage_retries,
            kwargs={"lost": lost},
        ) from exc


@app.task(name="synth.media", bind=True)
def media(self, job_id: str, item_id: str, lost: list[int] | None = None) -> None:
    _guarded(self, "media", job_id, item_id, lost)


@app.task(name="synth.caption", bind=True)
def caption(self, job_id: str, item_id: str, lost: list[int] | None = None) -> None:
    _guarded(self, "caption", job_id, item_id, lost)


@app.task(name="synth.pairs", bind=True)
def pairs(self, job_id: str, item_id: str, lost: list[int] | None = None) -> None:
    _guarded(self, "pairs", job_id, item_id, lost)


@app.task(name="synth.io_download", bind=True)
def download(self, job_id: str, item_id: str, lost: list[int] | None = None) -> None:
    _guarded(self, "download", job_id, item_id, lost)


@app.task(name="synth.io_submit")
def submit_source(job_id: str, params: dict) -> dict:
    """Submission through the API: list the source and enqueue its items (io queue) under the job
    row the API created and returned (so ``GET /v1/jobs/<id>`` follows the job to its end); a
    source that cannot be listed fails that job with the reason."""
    from services.synth.jobs import submit
    from shared.db.jobs import set_job_state
    from shared.db.models import JobState

    init_db()
    try:
        return submit(params["source"], fresh=bool(params.get("fresh")), job_id=job_id)
    except (OperationalError, InterfaceError):
        raise
    except Exception as exc:  # noqa: BLE001 - a bad source is recorded on the job, not lost
        set_job_state(job_id, JobState.failed, kind="synth", error=exc)
        return {"job": job_id, "error": str(exc)}
