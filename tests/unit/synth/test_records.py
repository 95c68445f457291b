"""An item's end and its job's state are one transaction: a worker killed in between cannot leave
every item finished and the job ``running`` for good; a redelivered task settles such a job."""

from __future__ import annotations

import pytest

from services.synth import records, tasks
from shared.db import init_db, session_scope, upsert
from shared.db.models import ItemState, Job, JobEvent, JobItem, JobState


@pytest.fixture
def job():
    init_db()
    with session_scope() as s:
        s.add(Job(id="job-1", kind="synth", state=JobState.running, params={"source": "mem://"}))
        s.flush()
        upsert(
            s,
            JobItem,
            [
                {
                    "id": f"item-{i}",
                    "job_id": "job-1",
                    "item_key": f"v{i}.mp4",
                    "state": "running",
                    "attempts": 1,
                    "stage": "pairs",
                    "result": {},
                }
                for i in (1, 2)
            ],
        )
    return "job-1"


def _state(job_id: str) -> tuple[JobState, dict[str, ItemState], int]:
    with session_scope() as s:
        items = {it.id: it.state for it in s.query(JobItem).filter(JobItem.job_id == job_id)}
        events = s.query(JobEvent).filter(JobEvent.job_id == job_id).count()
        return s.get(Job, job_id).state, items, events


def test_the_last_item_completes_its_job(job):
    records.finish_item("item-1", ItemState.done, stage="pairs")
    assert _state(job)[0] == JobState.running
    records.finish_item("item-2", ItemState.rejected, stage="pairs", reason="static")
    state, items, events = _state(job)
    assert state == JobState.completed and items == {
        "item-1": ItemState.done,
        "item-2": ItemState.rejected,
    }
    assert events == 2


def test_a_failure_before_the_job_is_settled_leaves_the_item_unfinished(job, monkeypatch):
    """The kill window of the old code: item committed, job refresh never ran. Now all or nothing,
    so the redelivered task does the work again and settles the job."""
    records.finish_item("item-1", ItemState.done, stage="pairs")

    def killed(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise KeyboardInterrupt("worker killed")

    monkeypatch.setattr(records, "_refresh", killed)
    with pytest.raises(KeyboardInterrupt):
        records.finish_item("item-2", ItemState.done, stage="pairs")
    state, items, events = _state(job)
    assert state == JobState.running and items["item-2"] == ItemState.running and events == 1


def test_a_redelivered_task_of_a_finished_item_settles_a_job_left_running(job):
    with session_scope() as s:  # as a worker killed between the two writes of older code left it
        for item in s.query(JobItem):
            item.state = ItemState.done
    assert _state(job)[0] == JobState.running
    task = type("Task", (), {"name": "synth.pairs"})()
    tasks._run(task, "pairs", job, "item-2")
    assert _state(job)[0] == JobState.completed


def test_status_reads_counters_sums_newest_errors_and_pages_items():
    from typer.testing import CliRunner

    from services.synth.cli import app

    init_db()
    with session_scope() as s:
        s.add(Job(id="job-p", kind="synth", state=JobState.running, params={"source": "mem://"}))
        s.flush()
        upsert(
            s,
            JobItem,
            [
                {
                    "id": f"p{i}",
                    "job_id": "job-p",
                    "item_key": f"v{i:02d}.mp4",
                    "state": "running",
                    "attempts": 1,
                    "stage": "media",
                    "result": {},
                }
                for i in range(12)
            ],
        )
    for i in range(12):
        records.update_result(f"p{i}", clips=2, frames=18)
        records.update_result(f"p{i}", clips=3)  # a stage run again: its new value, not added twice
        if i % 3 == 0:
            records.finish_item(f"p{i}", ItemState.rejected, stage="media", reason=f"bad video {i}")
        elif i < 11:
            records.finish_item(f"p{i}", ItemState.done, stage="pairs", pairs=5)
    summary = records.job_summary("job-p", limit=0)
    assert summary["counts"] == {"rejected": 4, "done": 7, "running": 1} and summary["total"] == 12
    assert (summary["clips"], summary["frames"], summary["pairs"]) == (36, 216, 35)
    assert summary["state"] == "running" and summary["items"] == [] and summary["next"] is None
    assert [e["reason"] for e in records.job_summary("job-p", errors=2)["errors"]] == [
        "bad video 9",
        "bad video 6",
    ]
    page = records.job_summary("job-p", limit=3, state="rejected")
    assert [it["item"] for it in page["items"]] == ["v00.mp4", "v03.mp4", "v06.mp4"] and page[
        "next"
    ] == "v06.mp4"
    assert page["items"][0]["notes"] == ["media: bad video 0"]
    rest = records.job_summary("job-p", limit=3, state="rejected", after=page["next"])
    assert [it["item"] for it in rest["items"]] == ["v09.mp4"] and rest["next"] is None
    records.finish_item("p11", ItemState.failed, stage="caption", reason="gave up")
    assert records.job_progress("job-p")["state"] == "completed"
    out = CliRunner().invoke(
        app,
        ["status", "job-p", "--items", "--state", "rejected", "--limit", "2"],
        env={"COLUMNS": "200"},
    )
    assert out.exit_code == 0 and "v03.mp4" in out.output and "v06.mp4" not in out.output, (
        out.output
    )
    assert "--after 'v03.mp4'" in out.output and "gave up" in out.output


def test_the_status_counts_pairs_by_task_and_variant(job):
    # as the pairs step records them (records.update_result): kept as the job's sums
    for i, by in ((1, {"TI2V": {"scene_change": 2}}), (2, {"TI2V": {"scene_change": 1}})):
        records.update_result(f"item-{i}", pairs_by_variant={**by, "TV2V": {"x": i}})
    summary = records.job_summary(job)
    assert summary["variants"] == {"TI2V": {"scene_change": 3}, "TV2V": {"x": 3}}
