"""Synthesis jobs: submit a source (one item per video), follow it, run it to the end with local
worker processes. A job's id is derived from its source, so resubmitting a source reuses its rows
(and re-enqueues only unfinished items): nothing is duplicated, and a restarted job resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from typing import Any

from sqlalchemy import select

from services.synth import records
from services.synth.records import TERMINAL, job_summary
from services.synth.sources import SourceItem, list_source, source_kind
from shared.db import counters, init_db, session_scope, upsert
from shared.db.models import ItemState, Job, JobItem, JobState, Source
from shared.ids import stable_id
from shared.queue import QUEUE_CAPTION, QUEUE_IO, QUEUE_MEDIA, get_celery

SYNTH_QUEUES = (QUEUE_MEDIA, QUEUE_CAPTION, QUEUE_IO)


SUBMIT_BATCH = 1000  # item rows per insert, task ids per read


def submit(source: str, *, fresh: bool = False, job_id: str | None = None) -> dict[str, Any]:
    """Create (or reuse) the job of ``source`` and enqueue its unfinished items. ``job_id``: the id
    of a job row created beforehand (a submission through the API), which this job then fills.
    Items go in by batches (a known item is left as it is) and the unfinished ones are enqueued
    batch by batch, in the source's order: no load of all the job's items."""
    init_db()
    uri = source if source.startswith("s3://") else os.path.abspath(source)
    kind = source_kind(uri)
    items = list_source(uri)
    source_id = stable_id("source", uri)
    if job_id is None:
        job_id = (
            stable_id("synth-job", uri, time.time_ns()) if fresh else stable_id("synth-job", uri)
        )
    with session_scope() as s:
        upsert(s, Source, [{"id": source_id, "uri": uri, "kind": kind}], update=[])
        job = s.get(Job, job_id)
        if job is None:
            s.add(
                Job(
                    id=job_id,
                    kind="synth",
                    state=JobState.running,
                    params={"source": uri},
                    source_id=source_id,
                )
            )
        elif job.state != JobState.completed:
            job.state = JobState.running
            job.source_id = job.source_id or source_id
        s.flush()
        for start in range(0, len(items), SUBMIT_BATCH):
            upsert(
                s,
                JobItem,
                [_item_row(job_id, source_id, it) for it in items[start : start + SUBMIT_BATCH]],
                update=[],
            )
        if counters.open_count(s, job_id):
            s.get_one(Job, job_id).state = JobState.running
        elif not items:
            # nothing to do: done, not pending forever
            s.get_one(Job, job_id).state = JobState.completed
    app, enqueued = get_celery(), 0
    for start in range(0, len(items), SUBMIT_BATCH):  # in the source's order; an item resumes
        batch = items[start : start + SUBMIT_BATCH]
        ids = [stable_id(job_id, it.uri) for it in batch]
        with session_scope() as s:
            open_ids = set(
                s.scalars(
                    select(JobItem.id).where(JobItem.id.in_(ids), JobItem.state.not_in(TERMINAL))
                )
            )
        for item_id, it in zip(ids, batch, strict=True):  # at the stage it reached
            if item_id in open_ids:
                task, queue = _first_task(it)
                app.send_task(task, args=[job_id, item_id], queue=queue)
                enqueued += 1
    return {"job": job_id, "items": len(items), "enqueued": enqueued}


def _first_task(it: SourceItem) -> tuple[str, str]:
    """A web source is downloaded first (io queue); any other item starts at media."""
    if it.extra.get("url") and not it.reject:
        return "synth.io_download", QUEUE_IO
    return "synth.media", QUEUE_MEDIA


def _item_row(job_id: str, source_id: str, it: SourceItem) -> dict[str, Any]:
    return {
        "id": stable_id(job_id, it.uri),
        "job_id": job_id,
        "item_key": it.uri,
        "state": ItemState.pending,
        "attempts": 0,
        "result": {
            "source": asdict(it),
            "video_id": stable_id("video", it.uri),
            "source_id": source_id,
        },
    }


def is_done(job_id: str) -> bool:
    return records.is_done(job_id)


def start_local_workers(n: int, queues: tuple[str, ...] = SYNTH_QUEUES) -> list[subprocess.Popen]:
    """Worker processes on this machine (the embedded default's way of running a job)."""
    code = (
        "from services.synth.worker import main; import sys; "
        "main(sys.argv[1].split(','), concurrency=1)"
    )
    procs = []
    for i in range(n):
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", code, ",".join(queues)],
                env=dict(os.environ, UNIVR_WORKER_INDEX=str(i)),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
    return procs


def stop_workers(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def workers_alive(timeout: float = 1.5) -> bool:
    try:
        return bool(get_celery().control.ping(timeout=timeout))
    except Exception:  # noqa: BLE001 - no broadcast support or no broker: assume none
        return False


def run(
    source: str, *, workers: int = 2, timeout_s: float = 3600, fresh: bool = False, progress=None
) -> dict[str, Any]:  # noqa: ANN001
    """Submit ``source``, start local workers if none answer, wait for the job to complete."""
    info = submit(source, fresh=fresh)
    procs = [] if (workers <= 0 or workers_alive()) else start_local_workers(workers)
    deadline = time.monotonic() + timeout_s
    try:
        while not is_done(info["job"]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {info['job']} not finished after {timeout_s:.0f} s")
            for i, p in enumerate(
                procs
            ):  # a dead local worker is replaced; its task is redelivered
                if p.poll() is not None:
                    procs[i] = start_local_workers(1)[0]
            if progress:
                progress(records.job_progress(info["job"]))
            time.sleep(0.5)
    finally:
        stop_workers(procs)
    return job_summary(info["job"])
