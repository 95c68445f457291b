"""Each stage of an item ends once, however its messages are delivered (acks_late: a worker killed
after a stage ended, before the ack, has the message delivered again; a visibility timeout can
deliver it while the first run still works). Found by the stack e2e: a caption worker SIGKILLed
mid-item made the item's ``pairs`` stage end twice (the redelivered caption sent a second pairs
task, and both ran)."""

from __future__ import annotations

import pytest

from services.synth import records, stages, tasks
from shared.db import session_scope
from shared.db.models import ItemState, Job, JobEvent, JobItem, JobState


@pytest.fixture
def sent(monkeypatch):
    """The next-stage tasks sent (no broker: recorded), and every stage's work done at once."""
    out: list[str] = []
    monkeypatch.setattr(tasks.app, "send_task", lambda name, args, queue, **kw: out.append(name))
    monkeypatch.setattr(stages, "run_stage", lambda stage, *a: {"clips": 2, "stage": stage})
    return out


def _deliver(stage: str, item: str) -> None:
    getattr(tasks, stage).push_request(retries=0)
    try:
        getattr(tasks, stage).run("job-1", item)
    finally:
        getattr(tasks, stage).pop_request()


def _ends(item: str) -> list[tuple[str, str, int]]:
    with session_scope() as s:
        return [
            (e.stage, e.state, e.attempt)
            for e in s.query(JobEvent).filter(JobEvent.item_id == item).order_by(JobEvent.id)
            if e.state == "done"
        ]


def _row(item: str) -> tuple:
    with session_scope() as s:
        row = s.get(JobItem, item)
        return row.state, row.stage, row.attempts


def test_a_redelivered_stage_that_ended_runs_nothing_and_sends_nothing(item, sent):
    _deliver("media", item)
    _deliver("caption", item)
    assert sent == ["synth.caption", "synth.pairs"] and _row(item)[1:] == ("pairs", 0)
    _deliver("caption", item)  # its worker died after the stage ended, before the ack
    assert sent == ["synth.caption", "synth.pairs", "synth.pairs"]  # pairs never began: again
    _deliver("pairs", item)
    _deliver("pairs", item)  # the second pairs message: the item has ended
    _deliver("caption", item)  # and a late copy of caption: nothing moves back
    assert _row(item) == (ItemState.done, "pairs", 1)
    assert _ends(item) == [
        ("media", "done", 1),
        ("caption", "done", 1),
        ("pairs", "done", 1),
        ("pairs", "done", 0),  # the item's own end
    ]
    with session_scope() as s:
        assert s.get(Job, "job-1").state == JobState.completed


def test_once_the_next_stage_began_a_late_copy_does_not_send_it_again(item, sent):
    _deliver("media", item)
    records.begin_attempt(item, "caption", None, tasks.ORDER)  # caption is running
    _deliver("media", item)
    assert sent == ["synth.caption"] and _row(item)[1:] == ("caption", 1)


def test_two_runs_of_one_stage_side_by_side_end_it_once(item, sent):
    """Two copies of the pairs message (the caption stage sent it twice) begin before either ends:
    only the newest attempt ends the stage; the other's result is the same and is not recorded."""
    order = tasks.ORDER
    records.begin_attempt(item, "pairs", None, order)
    records.begin_attempt(item, "pairs", None, order)
    assert records.complete_stage("job-1", item, "pairs", 1, {"pairs": 4}, None) is False
    assert records.complete_stage("job-1", item, "pairs", 2, {"pairs": 4}, None) is True
    assert records.complete_stage("job-1", item, "pairs", 2, {"pairs": 4}, None) is False
    assert _ends(item) == [("pairs", "done", 2), ("pairs", "done", 0)]
    assert _row(item) == (ItemState.done, "pairs", 2)
    assert records.job_progress("job-1")["counts"].get("done") == 1
