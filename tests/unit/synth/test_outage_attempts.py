"""A database outage after a task counted its attempt does not spend the item's attempts: the
task is retried and takes the same attempt again, however many outages come; only a redelivered
copy of the same retry (its worker was killed) counts a new attempt, so a poison item still ends
failed. The test delivers each retry as a worker would (its kwargs, its retry number); the outage
is the driver's OperationalError raised where the database would be written."""

from __future__ import annotations

import pytest
from celery.exceptions import Retry
from sqlalchemy.exc import OperationalError

from services.synth import records, stages, tasks
from shared.config import get_settings
from shared.db import session_scope
from shared.db.models import ItemState, JobEvent, JobItem

OUTAGES = 5  # more than broker.max_attempts (3)


def _down() -> OperationalError:
    return OperationalError(
        "UPDATE job_items ...", {}, ConnectionRefusedError("connection refused")
    )


def _flaky(n: int, result):  # noqa: ANN001, ANN202
    calls = []

    def call(*a, **k):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        if len(calls) <= n:
            raise _down()
        return result(*a, **k) if callable(result) else result

    return call


def _deliver_until_done(monkeypatch: pytest.MonkeyPatch, item: str, limit: int) -> int:
    """Run synth.media and each retry it asks for, as the worker would; returns the deliveries."""
    asked: list[dict] = []
    monkeypatch.setattr(
        tasks.media, "retry", lambda **kw: asked.append(kw) or Retry("retry", when=kw["countdown"])
    )
    kwargs: dict = {}
    for retries in range(limit):
        tasks.media.push_request(retries=retries)
        try:
            tasks.media.run("job-1", item, **kwargs)
            return retries + 1
        except Retry:
            kwargs = asked[-1][
                "kwargs"
            ]  # Celery's retry(kwargs=...) is what the next delivery gets
        finally:
            tasks.media.pop_request()
    raise AssertionError(f"still retrying after {limit} deliveries")


@pytest.mark.parametrize("where", ["stage", "result write"])
def test_outages_after_the_attempt_was_counted_do_not_spend_attempts(item, monkeypatch, where):
    assert OUTAGES > get_settings().broker.max_attempts
    if where == "stage":  # the database goes away while the stage works (its own writes)
        monkeypatch.setattr(stages, "media_stage", _flaky(OUTAGES, {"clips": 2}))
    else:  # the stage's work is done, the write of its result fails
        monkeypatch.setattr(stages, "media_stage", lambda *a, **k: {"clips": 2})
        monkeypatch.setattr(records, "complete_stage", _flaky(OUTAGES, records.complete_stage))
    sent = []
    monkeypatch.setattr(
        tasks, "_next", lambda stage, job_id, item_id: sent.append((stage, item_id))
    )
    assert _deliver_until_done(monkeypatch, item, OUTAGES + 3) == OUTAGES + 1
    assert sent == [("media", item)]  # it went on to the next stage
    with session_scope() as s:
        row = s.get(JobItem, item)
        assert (row.state, row.stage, row.attempts, row.error) == (
            ItemState.running,
            "caption",  # media ended: the item waits for its next stage
            0,
            None,
        )
        assert row.result["clips"] == 2
        started = [e.attempt for e in s.query(JobEvent).filter(JobEvent.state == "started")]
    assert started == [1] * (OUTAGES + 1)  # every retry took attempt 1 again


def test_a_redelivered_copy_of_an_outage_retry_counts_an_attempt(item):
    """A retry's message delivered twice (its worker killed mid-task) takes the lost attempt
    once."""
    assert records.begin_attempt(item, "media")[1] == 1
    assert records.begin_attempt(item, "media", [1, 1])[1] == 1  # the outage's retry: same attempt
    assert records.begin_attempt(item, "media", [1, 1])[1] == 2  # its redelivered copy: a new one
    assert records.begin_attempt(item, "media", [1, 2])[1] == 3  # a stale token: counted
    assert records.begin_attempt(item, "caption", [3, 3])[1] == 1  # another stage starts over


def test_a_failing_stage_still_spends_its_attempts(item, monkeypatch):
    """Not an outage: the item's own error is retried max_attempts times, then recorded."""

    def broken(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise ValueError("undecodable")

    monkeypatch.setattr(stages, "media_stage", broken)
    resent = []
    monkeypatch.setattr(tasks.app, "send_task", lambda name, **kw: resent.append(name))
    for _ in range(get_settings().broker.max_attempts):
        tasks.media.run("job-1", item)
    with session_scope() as s:
        row = s.get(JobItem, item)
        assert (
            row.state == ItemState.failed
            and "failed after 3 attempts: ValueError: undecodable" in row.error
        )
    assert resent == ["synth.media"] * 2
