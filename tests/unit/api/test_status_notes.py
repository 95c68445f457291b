"""``/v1/status``: notes on items that went on are apart from rejections and errors; items by
state come from the per-job counters (what the dashboard's over-time charts difference)."""

from __future__ import annotations

from services.api.status import platform_status
from shared.db import counters, init_db, session_scope
from shared.db.models import Job, JobEvent, JobState


def test_notes_apart_from_rejections_and_items_by_state():
    init_db()
    with session_scope() as s:
        s.add(Job(id="j", kind="synth", state=JobState.running, params={}))
        s.flush()
        counters.set_counts(s, "j", {"done": 5, "rejected": 2, "failed": 1})
        for state, reason in [
            ("rectified", "raw caption unusable (empty)"),
            ("rectified", "raw caption unusable (empty)"),
            ("reencoded", "stream copy failed, re-encoded"),
            ("rejected", "static video"),
            ("error", "broker hiccup"),
        ]:
            s.add(JobEvent(job_id="j", stage="x", state=state, reason=reason))
    status = platform_status({"media": 3})
    assert status["notes"] == [
        {"reason": "raw caption unusable (empty)", "count": 2},
        {"reason": "stream copy failed, re-encoded", "count": 1},
    ]
    assert {e["reason"] for e in status["error_reasons"]} == {"static video", "broker hiccup"}
    assert status["items"] == {"done": 5, "rejected": 2, "failed": 1}
