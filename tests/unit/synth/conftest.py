"""Fixtures of the synth unit tests."""

from __future__ import annotations

import pytest

from shared.db import init_db, session_scope
from shared.db.models import ItemState, Job, JobItem, JobState


@pytest.fixture
def item() -> str:
    """One pending item (``item-1``, a local video) of a running synthesis job (``job-1``)."""
    init_db()
    with session_scope() as s:
        s.add(Job(id="job-1", kind="synth", state=JobState.running, params={"source": "mem://"}))
        s.flush()
        s.add(
            JobItem(
                id="item-1",
                job_id="job-1",
                item_key="v.mp4",
                state=ItemState.pending,
                attempts=0,
                result={"source": {"uri": "v.mp4", "local_path": None}, "video_id": "vid-1"},
            )
        )
    return "item-1"
