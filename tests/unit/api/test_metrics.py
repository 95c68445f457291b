"""``/metrics`` exports the platform's state from the database (jobs, training progress and task
probabilities, the newest UVRB scores, the live index), and every univr series the provisioned
Grafana dashboard plots exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.db import init_db, session_scope, upsert
from shared.db.models import (
    EvalRun,
    IndexVersion,
    ItemState,
    Job,
    JobEvent,
    JobItem,
    JobState,
    TrainingRun,
    TrainMetric,
)

DASHBOARD = Path(__file__).parents[3] / "docker" / "grafana" / "dashboards" / "univr.json"


@pytest.fixture
def client(monkeypatch):
    from fastapi.testclient import TestClient

    monkeypatch.setenv("UNIVR_API__REQUIRE_KEYS", "false")
    from shared.config import get_settings

    get_settings.cache_clear()
    init_db()
    from services.api.app import create_app

    return TestClient(create_app())


def _samples(client) -> dict[tuple[str, tuple], float]:  # noqa: ANN001
    r = client.get("/metrics")
    assert r.status_code == 200
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _rows() -> None:
    with session_scope() as s:
        upsert(
            s,
            TrainingRun,
            [
                {
                    "id": "run-a",
                    "base_model": "/m",
                    "sampler": "pyramid",
                    "state": "running",
                    "step": 20,
                }
            ],
        )
        upsert(
            s,
            TrainMetric,
            [
                {
                    "run_id": "run-a",
                    "step": 10,
                    "task": "t2v",
                    "loss": 2.5,
                    "values": {"lr": 1e-4, "sigma": 0.1, "probs": {"t2v": 0.9, "i2v": 0.1}},
                },
                {
                    "run_id": "run-a",
                    "step": 20,
                    "task": "i2v",
                    "loss": 1.25,
                    "values": {"lr": 5e-5, "sigma": 0.55, "probs": {"t2v": 0.6, "i2v": 0.4}},
                },
            ],
            key=("run_id", "step"),
        )
        upsert(
            s,
            Job,
            [
                {"id": "j1", "kind": "synth", "state": JobState.running},
                {"id": "j2", "kind": "synth", "state": JobState.running},
                {"id": "j3", "kind": "eval", "state": JobState.failed, "error": "boom"},
            ],
        )
        upsert(
            s,
            JobItem,
            [{"id": "i1", "job_id": "j1", "item_key": "a.mp4", "state": ItemState.rejected}],
        )
        s.add(JobEvent(job_id="j1", item_id="i1", stage="media", state="error", reason="corrupt"))
        upsert(
            s,
            EvalRun,
            [
                {
                    "id": "ev-1",
                    "model": "/m",
                    "benchmark": "uvrb-mini",
                    "state": "done",
                    "abilities": {"AVG_A": 0.25, "TXT": 0.5},
                }
            ],
        )
        upsert(
            s,
            IndexVersion,
            [{"id": "tiny-v1", "model": "/m", "avg_a": 0.25, "points": 42, "state": "live"}],
        )


def test_training_progress_jobs_scores_and_the_live_index_are_exported(client):
    empty = _samples(client)
    assert not any(
        name.startswith("univr_train") for name, _ in empty
    )  # nothing recorded: no series
    _rows()
    m = _samples(client)
    run = (("run_id", "run-a"), ("sampler", "pyramid"))
    assert m[("univr_train_loss", run)] == 1.25  # the newest step's, not the first
    assert m[("univr_train_step", run)] == 20 and m[("univr_train_lr", run)] == 5e-5
    assert m[("univr_train_sigma", run)] == 0.55 and m[("univr_train_running", run)] == 1
    assert m[("univr_train_task_probability", (*run, ("task", "i2v")))] == 0.4
    assert m[("univr_jobs", (("kind", "synth"), ("state", "running")))] == 2
    assert m[("univr_jobs", (("kind", "eval"), ("state", "failed")))] == 1
    assert m[("univr_job_items", (("state", "rejected"),))] == 1
    assert m[("univr_job_events", (("stage", "media"), ("state", "error")))] == 1
    assert m[("univr_eval_latest_score", (("ability", "AVG_A"), ("eval_run_id", "ev-1")))] == 0.25
    assert m[("univr_live_index_points", (("version", "tiny-v1"),))] == 42
    assert m[("univr_live_index_avg_a", (("version", "tiny-v1"),))] == 0.25


def test_every_univr_series_on_the_grafana_dashboard_exists(client):
    _rows()
    exported = {name for name, _ in _samples(client)}
    client.post(
        "/v1/search", json={"text": "x"}
    )  # may fail without an index; the counters exist anyway
    exported |= {name for name, _ in _samples(client)}
    exprs = [
        t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p.get("targets", [])
    ]
    wanted = {name for e in exprs for name in re.findall(r"\b(univr_[a-z_]+)", e)}
    assert wanted and wanted <= exported, sorted(wanted - exported)


class _Statements:
    """The SQL statements the engine runs while the context is open."""

    def __init__(self) -> None:
        from shared.db.session import get_engine

        self.engine, self.sql = get_engine(), []

    def _seen(self, conn, cursor, statement, params, context, many):  # noqa: ANN001, ARG002
        self.sql.append(" ".join(statement.split()))

    def __enter__(self) -> list[str]:
        from sqlalchemy import event

        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self.sql

    def __exit__(self, *exc: object) -> None:
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._seen)


def test_a_scrape_reads_counters_and_a_recent_window_of_events(client, monkeypatch):
    from datetime import timedelta

    from shared.config import get_settings
    from shared.db import counters
    from shared.db.models import utcnow

    monkeypatch.setenv("UNIVR_API__METRICS_EVENTS_WINDOW_S", "3600")
    monkeypatch.setenv("UNIVR_API__METRICS_EVENTS_LIMIT", "3")
    get_settings.cache_clear()
    _rows()  # one rejected item, one media error event (now)
    with session_scope() as s:
        old = utcnow() - timedelta(hours=2)
        for _ in range(4):  # before the window: not exported
            s.add(JobEvent(job_id="j1", stage="caption", state="done", created_at=old))
        for _ in range(5):  # in the window, but only the 3 newest events are read in all
            s.add(JobEvent(job_id="j1", stage="pairs", state="done"))
        counters.set_counts(s, "j2", {"done": 1000})  # counters a bulk load set: read as they are
    with _Statements() as sql:
        m = _samples(client)
    assert m[("univr_job_items", (("state", "rejected"),))] == 1
    assert m[("univr_job_items", (("state", "done"),))] == 1000  # no item row behind it
    events = {k[1]: v for k, v in m.items() if k[0] == "univr_job_events"}
    assert events == {(("stage", "pairs"), ("state", "done")): 3}  # the limit's newest
    assert not any("job_items" in q for q in sql)  # no count over items
    reads = [q for q in sql if "job_events" in q]
    assert reads and all("created_at >=" in q and "LIMIT" in q for q in reads), reads


def test_a_job_shows_items_and_progress_from_its_counters(client):
    from shared.db import counters
    from shared.db.jobs import job_progress

    _rows()
    with session_scope() as s:
        upsert(
            s,
            JobItem,
            [
                {"id": "i2", "job_id": "j1", "item_key": "b.mp4", "state": ItemState.done},
                {"id": "i3", "job_id": "j1", "item_key": "c.mp4", "state": ItemState.running},
            ],
        )
    with session_scope() as s:  # the triggers kept the counters: what a reader sees
        assert counters.job_counts(s, "j1") == {"rejected": 1, "done": 1, "running": 1}
        assert job_progress(s, "j1") == {"done": 2, "total": 3}
        assert job_progress(s, "j2") is None
        counters.set_counts(s, "j2", {"done": 7, "pending": 3})  # a bulk load's counters
    with _Statements() as sql, session_scope() as s:
        assert job_progress(s, "j2") == {"done": 7, "total": 10}
    assert sql and not any("job_items" in q for q in sql)
