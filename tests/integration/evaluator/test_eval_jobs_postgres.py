"""Eval job rows on PostgreSQL: the job, its per-dataset items and its result are the same upserts
as on SQLite, and a task delivered twice moves the same rows."""

from __future__ import annotations

import pytest

from services.evaluator.registry import DATASETS
from shared.db import session_scope
from shared.db.models import ItemState, JobState
from tests.unit.evaluator.test_jobs import FakeEmbedder, _dataset, _job


@pytest.mark.postgres
def test_eval_job_rows_on_postgres(tmp_path, pg, monkeypatch):
    from services.evaluator.jobs import run_eval_job
    from shared.db.jobs import job_progress

    uvrb = tmp_path / "uvrb"
    for d in DATASETS[:3]:
        _dataset(uvrb, d.short)
    monkeypatch.setattr(
        "services.evaluator.runner.Embedder", lambda model=None, adapter=None: FakeEmbedder()
    )
    params = {"uvrb": str(uvrb), "datasets": [d.short for d in DATASETS[:3]]}
    report = run_eval_job("job-pg", params)
    run_eval_job("job-pg", params)  # delivered again: the same rows move again
    job, items = _job("job-pg")
    assert job.state == JobState.completed and job.result["eval_run_id"] == report["eval_run_id"]
    assert items == {d.short: ItemState.done for d in DATASETS[:3]}
    with session_scope() as s:
        assert job_progress(s, "job-pg") == {"done": 3, "total": 3}
