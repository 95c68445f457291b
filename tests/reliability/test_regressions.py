"""Regression tests for the defects the reliability suite found (fast: no worker processes)."""

from __future__ import annotations

import pytest


def _reset() -> None:
    from shared.config import get_settings
    from shared.db.session import reset_engines
    from shared.queue import get_celery

    get_settings.cache_clear()
    get_celery.cache_clear()
    reset_engines()


@pytest.fixture
def embedded(univr_home):
    _reset()
    yield univr_home
    _reset()


def _api_job(params: dict) -> str:
    import uuid

    from shared.db import init_db, session_scope
    from shared.db.models import Job, JobState

    init_db()
    job_id = str(uuid.uuid4())
    with session_scope() as s:  # what POST /v1/jobs/synth writes before it sends synth.io_submit
        s.add(Job(id=job_id, kind="synth", state=JobState.pending, params=params))
    return job_id


def test_api_submission_fills_the_job_the_api_returned(embedded, tmp_path):
    """Found by the concurrent-submission load test: synth.io_submit created a second job under its
    own id, so the id the API returned stayed 'pending' forever."""
    from sqlalchemy import func, select

    from services.synth.tasks import submit_source
    from shared.db import session_scope
    from shared.db.models import Job, JobItem, JobState
    from shared.world import generate

    generate(tmp_path / "raw", 2, seed=3, workers=1)
    job_id = _api_job({"source": str(tmp_path / "raw")})
    out = submit_source(job_id, {"source": str(tmp_path / "raw")})
    assert out["job"] == job_id and out["enqueued"] == 2
    with session_scope() as s:
        job = s.get(Job, job_id)
        assert job.state == JobState.running and job.source_id
        assert (
            s.scalar(select(func.count()).select_from(JobItem).where(JobItem.job_id == job_id)) == 2
        )
        assert s.scalar(select(func.count()).select_from(Job)) == 1  # no second, orphan job


@pytest.mark.parametrize("params", [{"source": "/nonexistent/univr/source"}, {}])
def test_api_submission_of_a_bad_source_fails_the_job_with_a_reason(embedded, params):
    from services.synth.tasks import submit_source
    from shared.db import session_scope
    from shared.db.models import Job, JobState

    job_id = _api_job(params)
    submit_source(job_id, params)
    with session_scope() as s:
        job = s.get(Job, job_id)
        assert job.state == JobState.failed and job.error and len(job.error) > 8


def test_database_outage_retries_the_task_without_spending_attempts(embedded, monkeypatch):
    """Found by the Postgres-restart scenario: a task that could not reach the database raised,
    Celery acked its message, and the item stayed 'running' forever (the job never completed)."""
    from celery.exceptions import Retry
    from sqlalchemy.exc import OperationalError

    from services.synth import records, tasks

    def down(*_a, **_k):
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(records, "begin_attempt", down)
    sent = []
    monkeypatch.setattr(
        tasks.media, "retry", lambda **kw: sent.append(kw) or Retry("retry", when=kw["countdown"])
    )
    with pytest.raises(Retry):
        tasks.media.run("job", "item")
    assert sent and sent[0]["max_retries"] > 0 and sent[0]["countdown"] >= 1
