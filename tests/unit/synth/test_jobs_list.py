"""`univr synth jobs`: the newest synthesis jobs with state and counts, read from the per-job
counters (a job whose counters say otherwise than its items is listed by its counters)."""

from __future__ import annotations

import json
from datetime import timedelta

from typer.testing import CliRunner

from services.synth.cli import app
from shared.db import counters, init_db, session_scope, upsert
from shared.db.models import Job, JobItem, JobState, utcnow


def _jobs() -> None:
    init_db()
    now = utcnow()
    with session_scope() as s:
        for i, state in enumerate((JobState.completed, JobState.running, JobState.failed)):
            s.add(
                Job(
                    id=f"job-{i}",
                    kind="synth",
                    state=state,
                    params={"source": f"/data/src{i}"},
                    created_at=now + timedelta(seconds=i),
                )
            )
        s.add(Job(id="train-1", kind="train", state=JobState.running, params={}))
        s.flush()
        upsert(
            s,
            JobItem,
            [
                {"id": f"it-{k}", "job_id": "job-1", "item_key": f"v{k}.mp4", "state": st}
                for k, st in enumerate(("done", "done", "running"))
            ],
        )
        counters.add_sums(s, "job-1", {"clips": 5, "pairs": 12})


def test_jobs_lists_the_newest_synth_jobs_first_with_their_counts():
    _jobs()
    out = CliRunner().invoke(app, ["jobs", "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert [r["job"] for r in rows] == ["job-2", "job-1", "job-0"]  # no train job, newest first
    one = rows[1]
    assert one["state"] == "running" and one["source"] == "/data/src1"
    assert one["counts"] == {"done": 2, "running": 1} and one["total"] == 3
    assert (one["clips"], one["pairs"]) == (5, 12)
    assert rows[0]["counts"] == {} and rows[0]["total"] == 0


def test_jobs_reads_the_counters_not_the_items():
    _jobs()
    with session_scope() as s:  # counters as a bulk load that bypassed the triggers left them
        counters.set_counts(s, "job-0", {"done": 1000, "rejected": 7})
    rows = json.loads(CliRunner().invoke(app, ["jobs", "--json", "--state", "completed"]).output)
    assert [(r["job"], r["total"], r["counts"]) for r in rows] == [
        ("job-0", 1007, {"done": 1000, "rejected": 7})
    ]


def test_jobs_prints_a_table_by_default_and_limits():
    _jobs()
    out = CliRunner().invoke(app, ["jobs", "--limit", "2"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "job-2" in out.output and "job-1" in out.output and "job-0" not in out.output
    assert "running" in out.output and "done 2" in out.output
    assert not out.output.lstrip().startswith("[")


def test_jobs_rejects_an_unknown_state():
    init_db()
    out = CliRunner().invoke(app, ["jobs", "--state", "nope"])
    assert out.exit_code != 0 and "unknown job state" in str(out.exception)
