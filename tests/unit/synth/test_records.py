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
        upsert(s, JobItem, [{"id": f"item-{i}", "job_id": "job-1", "item_key": f"v{i}.mp4", "state": "running",
                             "attempts": 1, "stage": "pairs", "result": {}} for i in (1, 2)])
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
    assert state == JobState.completed and items == {"item-1": ItemState.done, "item-2": ItemState.rejected}
    assert events == 2


def test_a_failure_before_the_job_is_settled_leaves_the_item_unfinished(job, monkeypatch):
    """The kill window of the old code: item committed, job refresh never ran. Now all or nothing, so
    the redelivered task does the work again and settles the job."""
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
