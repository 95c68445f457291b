"""Faults injected into a running synthesis job (real worker processes, real broker, database and
object store): SIGKILLed workers, a broker restart, a database restart, an object-store outage.
Each time the job must complete with every item accounted for: clips, frames, pairs and objects
counted against the expected set, 0 lost, 0 duplicated.

The broker and the database that are restarted are private instances owned by the test
(tests/reliability/services.py); the shared services are never touched."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from tests.reliability.figures import record, size

JOB_TIMEOUT_S = size(500, 1500)


@pytest.fixture(scope="module")
def fault_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated videos plus the generator's failure cases (static, duplicate, truncated, ...)."""
    from shared.world import generate

    out = tmp_path_factory.mktemp("fault-raw")
    generate(out, size(6, 44), seed=21, failures=True, workers=2)
    return out / "manifest.jsonl"


def _reset() -> None:
    from shared.config import get_settings
    from shared.db.session import reset_engines
    from shared.queue import get_celery

    get_settings.cache_clear()
    get_celery.cache_clear()
    reset_engines()


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch):
    """Point this process and the workers it starts at a broker, a database and (optionally) S3."""

    def apply(broker_url: str, database_url: str, s3_endpoint: str | None = None) -> None:
        monkeypatch.setenv("UNIVR_BROKER__URL", broker_url)
        monkeypatch.setenv("UNIVR_DATABASE__URL", database_url)
        monkeypatch.setenv("UNIVR_BROKER__MAX_ATTEMPTS", "3")
        if s3_endpoint:
            for key, value in {
                "BACKEND": "s3",
                "ENDPOINT": s3_endpoint,
                "ACCESS_KEY": "testing",
                "SECRET_KEY": "testing",
                "BUCKET": "univr-reliability",
            }.items():
                monkeypatch.setenv(f"UNIVR_STORAGE__{key}", value)
        _reset()
        from shared.queue import QUEUES, get_celery

        with (
            get_celery().connection_for_write() as conn
        ):  # a node shared by the module: start empty
            for q in QUEUES:
                try:
                    conn.default_channel.queue_purge(q)
                except Exception:  # noqa: BLE001 - not declared yet
                    pass

    yield apply
    _reset()


Fault = Callable[[dict, list], list]


def _progress(job_id: str) -> tuple[bool, dict | None]:
    """(done, summary); (False, None) while the database is unreachable."""
    from services.synth.jobs import is_done
    from services.synth.records import job_summary

    try:
        return is_done(job_id), job_summary(job_id)
    except DBAPIError:
        return False, None


def terminal(summary: dict) -> int:
    return sum(v for k, v in summary["counts"].items() if k in ("done", "rejected", "failed"))


def run_with_faults(manifest: Path, workers: int, fault: Fault) -> tuple[dict, float]:
    """Submit the job, start worker processes, call ``fault(summary, procs) -> procs`` while it
    runs."""
    from services.synth.jobs import start_local_workers, stop_workers, submit

    t0 = time.monotonic()
    info = submit(str(manifest))
    procs = start_local_workers(workers)
    try:
        while True:
            assert time.monotonic() - t0 < JOB_TIMEOUT_S, "job did not complete"
            done, summary = _progress(info["job"])
            if done:
                break
            if summary is not None:
                procs = fault(summary, procs)
            for i, p in enumerate(
                procs
            ):  # a worker that died on its own is replaced (as `synth run` does)
                if p.poll() is not None:
                    procs[i] = start_local_workers(1)[0]
            time.sleep(0.3)
    finally:
        stop_workers(procs)
    from services.synth.records import job_summary

    return job_summary(info["job"]), time.monotonic() - t0


def account(summary: dict, manifest: Path) -> dict:
    """Count what the job produced against what it should have: lost, duplicated, retried."""
    from shared.db import session_scope
    from shared.db.models import Clip, Frame, JobEvent, JobItem, Pair
    from shared.storage import get_store

    expected = len(manifest.read_text().splitlines())
    completed = sum(1 for it in summary["items"] if it["state"] in ("done", "rejected"))
    with session_scope() as s:
        kept = set(s.scalars(select(Clip.id).where(Clip.kept.is_(True))))
        frames = s.scalar(select(func.count()).select_from(Frame))
        items = s.scalar(select(func.count()).select_from(JobItem))
        pairs = s.scalar(select(func.count()).select_from(Pair))
        distinct_pairs = s.scalar(select(func.count(func.distinct(Pair.id))))
        retries = s.scalar(
            select(func.count())
            .select_from(JobEvent)
            .where(JobEvent.state == "started", JobEvent.attempt > 1)
        )
    objects = list(get_store().list("clips/"))
    missing = sum(1 for cid in kept for key in _clip_keys(cid) if key not in set(objects))
    duplicated = (
        max(0, len(objects) - 10 * len(kept))
        + max(0, frames - 9 * len(kept))
        + max(0, items - expected)
        + (pairs - distinct_pairs)
    )
    return {
        "expected": expected,
        "completed": completed,
        "lost": expected - completed + missing,
        "duplicated": duplicated,
        "retries": retries,
        "clips": len(kept),
        "pairs": pairs,
        "objects": len(objects),
    }


def _clip_keys(cid: str) -> list[str]:
    return [
        f"clips/{cid}/clip.mp4",
        f"clips/{cid}/key/00.jpg",
        *(f"clips/{cid}/frames/{i:02d}.jpg" for i in range(8)),
    ]


def _finish(name: str, faults: str, summary: dict, manifest: Path, wall: float) -> None:
    figures = account(summary, manifest)
    record(name, faults=faults, wall_s=wall, **figures)
    assert summary["state"] == "completed"
    assert figures["lost"] == 0 and figures["duplicated"] == 0, figures
    check_items(summary, manifest)


def check_items(summary: dict, manifest: Path) -> None:
    """Every item ended as it must whatever the faults: good videos as clips with pairs, broken
    ones as rejections with a reason; none failed. (Which of two near-duplicates is kept, and
    whether a truncated file is repaired, is the synthesis suite's business, not this one's.)"""
    rows = {
        str(manifest.parent / json.loads(line)["path"]): json.loads(line)
        for line in manifest.read_text().splitlines()
    }
    by_item = {it["item"]: it for it in summary["items"]}
    assert set(by_item) == set(rows), "every manifest entry is an item"
    problems = []
    for path, row in rows.items():
        item = by_item[path]
        if item["state"] == "failed" or item["state"] not in ("done", "rejected"):
            problems.append((path, item["state"], item["reason"], item["notes"][-2:]))
        elif item["state"] == "rejected" and not item["reason"]:
            problems.append((path, "rejected without a reason"))
        elif row["failure"] in ("garbage", "empty", "static") and item["state"] != "rejected":
            problems.append((path, f"{row['failure']} file not rejected"))
        elif item["state"] == "done" and not item["clips"]:
            problems.append((path, "done without clips"))
    assert not problems, problems
    good = [p for p, r in rows.items() if not r["failure"]]
    assert sum(by_item[p]["state"] == "done" for p in good) >= 0.75 * len(
        good
    )  # a few are legitimately static
    from shared.db import session_scope
    from shared.db.models import Clip, Pair, Video

    with session_scope() as s:
        for path in good:
            if by_item[path]["state"] != "done":
                continue
            vid = s.scalar(select(Video.id).where(Video.uri == path))
            assert s.scalar(
                select(func.count())
                .select_from(Clip)
                .where(Clip.video_id == vid, Clip.kept.is_(True))
            ), path
            tasks = set(s.scalars(select(Pair.task).where(Pair.video_id == vid)))
            assert "T2V" in tasks and len(tasks) >= 5, (path, tasks)


def task_running(job_id: str) -> bool:
    """Whether a stage of the job is executing right now (an item whose latest event is
    'started')."""
    from shared.db import session_scope
    from shared.db.models import JobEvent

    latest = (
        select(JobEvent.item_id, func.max(JobEvent.id).label("last"))
        .where(JobEvent.job_id == job_id)
        .group_by(JobEvent.item_id)
        .subquery()
    )
    try:
        with session_scope() as s:
            states = set(
                s.scalars(select(JobEvent.state).join(latest, JobEvent.id == latest.c.last))
            )
    except DBAPIError:
        return False
    return "started" in states


class AtProgress:
    """Inject up to ``n`` faults into a running job: the first as soon as a task is executing, the
    i-th after that once i/(n+1) of the items have finished, while a task is executing if the poll
    catches one within two more items (so each fault lands on work in flight as far as a poll can
    tell; the retries column shows how many tasks were cut). A fast machine can finish a short job
    before the later faults come due, so tests require at least one fault (``landed``) and the
    figures table shows how many were injected."""

    def __init__(self, n: int, total: int, inject: Callable[[list], list]):
        self.n, self.total, self.inject, self.count = n, total, inject, 0

    def __call__(self, summary: dict, procs: list) -> list:
        if self.count >= self.n:
            return procs
        done, running = terminal(summary), task_running(summary["job"])
        at = int(self.count * self.total / (self.n + 1))
        if (self.count == 0 and (running or done >= 1)) or (
            self.count and (done >= at + 2 or (done >= at and running))
        ):
            procs = self.inject(procs)
            self.count += 1
        return procs

    @property
    def landed(self) -> bool:
        return self.count >= 1


@pytest.mark.rabbitmq
@pytest.mark.postgres
@pytest.mark.slow
def test_sigkill_workers_repeatedly(configure, private_rabbitmq, postgres_url, fault_corpus):
    from services.synth.jobs import start_local_workers

    configure(private_rabbitmq.url, postgres_url)
    total = len(fault_corpus.read_text().splitlines())

    def kill(procs: list) -> list:
        victim = procs[0]
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        return [start_local_workers(1)[0], *procs[1:]]

    fault = AtProgress(size(2, 10), total, kill)
    summary, wall = run_with_faults(fault_corpus, 1, fault)
    _finish("synth: SIGKILL worker", f"{fault.count}/{fault.n}", summary, fault_corpus, wall)
    assert fault.landed, "no fault was injected before the job completed"


def _outage_mid_job(name: str, server, down_s: float, fault_corpus: Path) -> None:  # noqa: ANN001
    """Take ``server`` down for ``down_s`` seconds (1 time short, 3 times full) while a job runs."""
    total = len(fault_corpus.read_text().splitlines())

    def outage(procs: list) -> list:
        server.restart(down_s=down_s)
        return procs

    fault = AtProgress(size(1, 3), total, outage)
    summary, wall = run_with_faults(fault_corpus, 2, fault)
    _finish(name, f"{fault.count}/{fault.n}", summary, fault_corpus, wall)
    assert fault.landed, "no fault was injected before the job completed"


@pytest.mark.rabbitmq
@pytest.mark.postgres
@pytest.mark.slow
def test_broker_restart_mid_job(configure, private_rabbitmq, postgres_url, fault_corpus):
    configure(private_rabbitmq.url, postgres_url)
    _outage_mid_job("synth: RabbitMQ restart", private_rabbitmq, 3, fault_corpus)


@pytest.mark.rabbitmq
@pytest.mark.postgres
@pytest.mark.slow
def test_postgres_restart_mid_job(configure, private_rabbitmq, private_postgres, fault_corpus):
    configure(private_rabbitmq.url, private_postgres.url)
    _outage_mid_job("synth: Postgres restart", private_postgres, 3, fault_corpus)


@pytest.mark.rabbitmq
@pytest.mark.postgres
@pytest.mark.slow
def test_object_store_outage_mid_job(
    configure, private_rabbitmq, postgres_url, restartable_s3, fault_corpus
):
    configure(private_rabbitmq.url, postgres_url, restartable_s3.endpoint)
    _outage_mid_job("synth: S3 outage", restartable_s3, 5, fault_corpus)
