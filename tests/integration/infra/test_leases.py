"""Leases on long jobs against a real PostgreSQL: one claim wins, a duplicate is refused, an
expired lease is taken over (and the old holder can no longer write), cancel stops a supervised run
(child process and in-process), the sweeper re-sends expired jobs, migration 0004 back-fills."""

from __future__ import annotations

import os
import threading
import time

import pytest

from shared.config import get_settings
from shared.db.models import JobState

TARGET = "tests.integration.infra.lease_targets:counting"


def _job(job_id):
    from shared.db import session_scope
    from shared.db.models import Job

    with session_scope() as s:
        return s.get(Job, job_id)


def _cancel_once_running(job_id: str, ready=lambda: True, timeout_s: float = 300):  # noqa: ANN201
    """Cancel ``job_id`` once its run has reported a step to the row (and ``ready()``): on a busy
    machine the run may take seconds to start, so a fixed delay could cancel it before any step."""
    from shared.db import lease

    def wait_then_cancel() -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                job = _job(job_id)
            except Exception:  # noqa: BLE001 - the run has not made its tables yet
                job = None
            if job is not None and (job.progress or {}).get("step", 0) > 0 and ready():
                break
            time.sleep(0.05)
        lease.cancel(job_id)

    thread = threading.Thread(target=wait_then_cancel, daemon=True)
    thread.start()
    return thread


def test_one_claim_wins_a_duplicate_is_refused_an_expired_lease_is_taken_over(pg):
    from shared.db import lease

    first = lease.claim(
        "j1",
        "worker-a",
        kind="train",
        lease_s=30,
        params={"x": 1},
        message={"task": "trainer.run", "args": ["j1", {"x": 1}]},
    )
    assert first.granted and first.attempts == 1
    dup = lease.claim("j1", "worker-b", kind="train", lease_s=30)
    assert not dup.granted and dup.owner == "worker-a" and dup.state == JobState.running
    assert lease.renew("j1", "worker-a", lease_s=0.2, progress={"step": 3})
    assert not lease.renew("j1", "worker-b", lease_s=30)  # not its lease
    time.sleep(0.5)  # worker-a "died": its lease ran out
    assert lease.expired(("train",)) == [("j1", {"task": "trainer.run", "args": ["j1", {"x": 1}]})]
    assert lease.expired(("eval",)) == []
    took = lease.claim("j1", "worker-b", kind="train", lease_s=30)
    assert took.granted and took.attempts == 2
    assert not lease.renew("j1", "worker-a", lease_s=30)  # the old holder learns it lost the job
    assert not lease.finish("j1", "worker-a", JobState.failed, error="late")  # and cannot end it
    assert lease.finish("j1", "worker-b", JobState.completed, result={"ok": True})
    job = _job("j1")
    assert job.state == JobState.completed and job.result == {"ok": True} and job.error is None
    assert job.progress == {"step": 3} and job.lease_expires_at is None
    assert not lease.claim("j1", "worker-c", kind="train", lease_s=30).granted  # ended: never again


def test_cancel_stops_a_supervised_child_process_and_the_job_says_cancelled(
    pg, tmp_path, monkeypatch
):
    from shared.supervise import run_leased

    monkeypatch.setenv("UNIVR_JOBS__HEARTBEAT_S", "0.3")
    monkeypatch.setenv("UNIVR_JOBS__CANCEL_GRACE_S", "5")
    get_settings.cache_clear()
    pid_file = tmp_path / "pid"
    _cancel_once_running("j2", ready=pid_file.exists)
    out = run_leased(
        "j2",
        {"n": 600, "every_s": 0.1, "pid_file": str(pid_file)},
        kind="train",
        target=TARGET,
        message={"task": "trainer.run", "args": []},
    )
    assert out["state"] == "cancelled"
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)  # the run is gone
    job = _job("j2")
    assert job.state == JobState.cancelled and 0 < job.progress["step"] < 600
    events = [
        e["event"] for e in __import__("shared.job_cli", fromlist=["timeline"]).timeline("j2")
    ]
    assert events == ["claimed", "cancelled"]


def test_a_supervised_run_completes_fails_and_is_not_run_twice(pg, monkeypatch):
    from shared.supervise import run_leased

    monkeypatch.setenv("UNIVR_JOBS__HEARTBEAT_S", "0.2")
    get_settings.cache_clear()
    msg = {"task": "trainer.run", "args": []}
    done = run_leased("j3", {"n": 10, "every_s": 0.1}, kind="train", target=TARGET, message=msg)
    assert (
        done["state"] == "completed"
        and done["result"]["counted"] == 10
        and done["result"]["pid"] != os.getpid()
    )
    assert _job("j3").result["counted"] == 10 and _job("j3").progress == {"step": 10}
    again = run_leased("j3", {"n": 10, "every_s": 0.1}, kind="train", target=TARGET, message=msg)
    assert again["refused"] and again["state"] == "completed"
    bad = run_leased(
        "j4",
        {"n": 1, "every_s": 0.0, "fail": "no such snapshot"},
        kind="train",
        target=TARGET,
        message=msg,
    )
    assert bad["state"] == "failed" and _job("j4").error == "ValueError: no such snapshot"


def test_cancel_stops_an_in_process_run_at_its_next_progress_report(pg, monkeypatch):
    from shared.supervise import run_leased

    monkeypatch.setenv("UNIVR_JOBS__HEARTBEAT_S", "0.2")
    get_settings.cache_clear()
    _cancel_once_running("j5")
    out = run_leased(
        "j5",
        {"n": 600, "every_s": 0.05},
        kind="eval",
        target=TARGET,
        message={"task": "evaluator.run", "args": []},
        in_process=True,
    )
    assert out["state"] == "cancelled" and _job("j5").state == JobState.cancelled
    assert 0 < _job("j5").progress["step"] < 600


def test_the_sweeper_resends_the_message_of_an_expired_job_once_per_lease(pg, monkeypatch):
    from shared.db import lease
    from shared.sweeper import sweep

    monkeypatch.setenv("UNIVR_JOBS__LEASE_S", "0.5")
    monkeypatch.setenv("UNIVR_JOBS__HEARTBEAT_S", "0.1")
    get_settings.cache_clear()
    msg = {"task": "indexer.build_and_promote", "args": ["j6", {}], "kwargs": {}}
    assert lease.claim("j6", "dead-worker", kind="index", lease_s=0.1, message=msg).granted
    assert lease.claim("j7", "live-worker", kind="index", lease_s=60, message=msg).granted
    time.sleep(0.6)
    sent = []
    assert sweep(("index",), sent.append) == ["j6"] and sent == [msg]
    # its workers are busy: the copy waits in the queue; sweeps (of this worker or another) within
    # the next lease send no second copy, one after it does (the first may have been lost)
    assert sweep(("index",), sent.append) == [] and sweep(("index",), sent.append) == []
    time.sleep(0.6)
    assert sweep(("index",), sent.append) == ["j6"] and sent == [msg, msg]
    assert lease.claim("j6", "new-worker", kind="index", lease_s=60).granted  # no wait to claim


def test_migration_0004_gives_a_job_left_running_before_leases_an_expired_lease(pg):
    from sqlalchemy import text

    from shared.db.migrate import upgrade
    from shared.db.session import get_engine

    upgrade("0003", pg)
    with get_engine(pg).begin() as conn:
        for job_id, state in (("old-run", "running"), ("old-done", "completed")):
            conn.execute(
                text(
                    "INSERT INTO jobs (id, kind, state, params, created_at, updated_at) "
                    "VALUES (:i, 'train', :s, '{}', now(), now() - interval '1 hour')"
                ),
                {"i": job_id, "s": state},
            )
    upgrade("head", pg)
    from shared.db import lease

    assert _job("old-run").attempts == 0 and _job("old-run").lease_expires_at is not None
    assert _job("old-done").lease_expires_at is None and _job("old-done").progress == {}
    assert [j for j, _ in lease.expired(("train",))] == ["old-run"]
    assert lease.claim("old-run", "w", kind="train", lease_s=30).granted  # taken over, not stuck
