"""Index job rows on PostgreSQL: a job row follows its work."""

from __future__ import annotations

import pytest


@pytest.mark.postgres
def test_job_states_on_postgres(pg):
    from services.indexer.pipeline import run_job
    from shared.db import session_scope
    from shared.db.models import Job, JobState

    with pytest.raises(RuntimeError):
        run_job(
            "job-pg",
            {"avg_a": 0.5},
            build=lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")),
        )
    with session_scope() as s:
        job = s.get(Job, "job-pg")
        assert job.state == JobState.failed and "boom" in job.error and job.kind == "index"
