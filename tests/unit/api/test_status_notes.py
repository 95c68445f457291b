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


def test_error_reasons_are_of_the_recent_window():
    """Reasons come from the recent-events window (like ``/metrics``), not the whole log."""
    from datetime import timedelta

    from shared.config import get_settings
    from shared.db.models import utcnow

    init_db()
    window = get_settings().api.metrics_events_window_s
    with session_scope() as s:
        s.add(Job(id="w", kind="synth", state=JobState.running, params={}))
        s.flush()
        old = utcnow() - timedelta(seconds=window + 60)
        s.add(JobEvent(job_id="w", stage="x", state="rejected", reason="ancient", created_at=old))
        s.add(JobEvent(job_id="w", stage="x", state="rectified", reason="old note", created_at=old))
        s.add(JobEvent(job_id="w", stage="x", state="rejected", reason="fresh"))
    status = platform_status({})
    reasons = {e["reason"] for e in status["error_reasons"]}
    assert "fresh" in reasons and "ancient" not in reasons
    assert "old note" not in {e["reason"] for e in status["notes"]}
