"""Takeovers of long jobs resume where the dead worker stopped, against a real PostgreSQL: an
evaluation at its first unscored dataset (the finished ones are neither loaded nor embedded again,
not even from the cache), an index build after its last upserted batch; each resume point is on the
Job row (``progress.resumed``) and in its lease timeline (``resumed``).

The first attempt is "killed" by an exception that is not an ``Exception`` (as SIGKILL, it records
nothing: the row stays running under a lease that then expires); the takeover is the supervised
run the sweeper's re-sent message starts (``run_leased`` with a new owner)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import update

from services.evaluator.registry import DATASETS
from shared.config import get_settings
from shared.db.models import JobState
from tests.unit.evaluator.test_jobs import FakeEmbedder, _dataset


class Killed(BaseException):
    """The worker's death: nothing catches it, nothing is recorded."""


def _expire(job_id: str) -> None:
    """The dead worker's lease runs out (without waiting ``jobs.lease_s``)."""
    from shared.db import session_scope
    from shared.db.models import Job, utcnow

    with session_scope() as s:
        s.execute(update(Job).where(Job.id == job_id).values(lease_expires_at=utcnow()))


def _run(job_id: str, params: dict, target: str) -> dict:
    from shared.supervise import run_leased

    message = {"task": "t", "args": [job_id, params]}
    return run_leased(job_id, params, kind="x", target=target, message=message, in_process=True)


def _row_and_timeline(job_id: str):  # noqa: ANN202
    from shared.db import session_scope
    from shared.db.models import Job
    from shared.job_cli import timeline

    with session_scope() as s:
        job = s.get(Job, job_id)
        s.expunge(job)
    return job, timeline(job_id)


def test_an_eval_takeover_resumes_at_the_first_unscored_dataset(pg, tmp_path, monkeypatch):
    names = [d.short for d in DATASETS[:4]]
    uvrb = tmp_path / "uvrb"
    for n in names:
        _dataset(uvrb, n)
    emb = FakeEmbedder()
    loaded: list[str] = []
    import services.evaluator.runner as runner

    real_load = runner.load_dataset
    monkeypatch.setattr(runner, "Embedder", lambda model=None, adapter=None: emb)
    monkeypatch.setattr(
        runner, "load_dataset", lambda root, n: loaded.append(n) or real_load(root, n)
    )
    params = {"uvrb": str(uvrb), "datasets": names}

    def die_on_third_dataset() -> None:
        if loaded == names[:3]:
            raise Killed

    emb.on_embed = die_on_third_dataset
    with pytest.raises(Killed):
        _run("eval-1", params, "services.evaluator.jobs:eval_job")
    job, _ = _row_and_timeline("eval-1")
    assert job.state == JobState.running and job.progress["dataset"] == names[2]
    _expire("eval-1")

    emb.on_embed, loaded[:] = None, []
    out = _run("eval-1", params, "services.evaluator.jobs:eval_job")
    assert out["state"] == "completed", out
    assert loaded == names[2:]  # the two finished datasets: not loaded, not embedded
    job, events = _row_and_timeline("eval-1")
    assert job.attempts == 2 and job.progress["resumed"] == {
        "dataset": names[2],
        "skipped": names[:2],
    }
    assert [e["event"] for e in events] == ["claimed", "takeover", "resumed", "completed"]
    assert events[2]["dataset"] == names[2] and events[2]["skipped"] == names[:2]
    # the report has every dataset, the skipped ones with the scores the first attempt stored
    assert job.result["datasets"] == 4
    from sqlalchemy import select

    from shared.db import session_scope
    from shared.db.models import EvalScore

    with session_scope() as s:
        scores = s.execute(
            select(EvalScore.dataset, EvalScore.score, EvalScore.details).where(
                EvalScore.eval_run_id == job.result["eval_run_id"]
            )
        ).all()
    assert {r.dataset: r.score for r in scores} == dict.fromkeys(names, 1.0)
    assert all(r.details["MRR"] == 1.0 for r in scores)


def test_an_eval_of_a_job_that_ended_scores_everything_again(pg, tmp_path, monkeypatch):
    from services.evaluator.jobs import run_eval_job

    names = [d.short for d in DATASETS[:2]]
    uvrb = tmp_path / "uvrb"
    for n in names:
        _dataset(uvrb, n)
    emb = FakeEmbedder()
    monkeypatch.setattr("services.evaluator.runner.Embedder", lambda model=None, adapter=None: emb)
    run_eval_job("eval-2", {"uvrb": str(uvrb), "datasets": names})
    loaded: list[str] = []
    import services.evaluator.runner as runner

    real_load = runner.load_dataset
    monkeypatch.setattr(
        runner, "load_dataset", lambda root, n: loaded.append(n) or real_load(root, n)
    )
    run_eval_job("eval-2", {"uvrb": str(uvrb), "datasets": names})  # completed: a new run
    assert loaded == names


def test_an_index_takeover_resumes_after_the_last_upserted_batch(pg, monkeypatch):
    from tests.unit.indexer.conftest import FakeEmbedder as IndexEmbedder

    rows = [  # ids as the corpus has them (UUID strings)
        {
            "id": str(uuid.UUID(int=i + 1)),
            "frames": [f"clips/{i}/00.jpg"],
            "fps": 1.0,
            "payload": {"kind": "clip"},
        }
        for i in range(10)
    ]
    emb = IndexEmbedder(fail_after_batches=2)
    real_embed = type(emb).embed

    def embed(self, items):  # noqa: ANN001, ANN202
        try:
            return real_embed(self, items)
        except RuntimeError:
            raise Killed from None

    monkeypatch.setattr(type(emb), "embed", embed)
    monkeypatch.setattr("services.indexer.build.corpus_rows", lambda source, dataset: rows)
    monkeypatch.setattr("services.indexer.build.Embedder", lambda model=None, adapter=None: emb)
    monkeypatch.setenv("UNIVR_VECTORS__UPSERT_BATCH", "3")
    get_settings.cache_clear()
    params = {"model": "/models/tiny", "avg_a": 0.5}
    with pytest.raises(Killed):
        _run("index-1", params, "services.indexer.pipeline:promotion_job")
    job, _ = _row_and_timeline("index-1")
    assert job.state == JobState.running and job.progress["points"] == 6
    _expire("index-1")

    emb.fail_after_batches, emb.batches = None, []
    out = _run("index-1", params, "services.indexer.pipeline:promotion_job")
    assert out["state"] == "completed" and out["result"]["promoted"], out
    assert emb.batches == [3, 1]  # only the rows after the last upserted batch
    job, events = _row_and_timeline("index-1")
    assert job.progress["resumed"] == {"points": 6, "batch": 2, "of": 10}
    assert [e["event"] for e in events] == ["claimed", "takeover", "resumed", "completed"]
    assert (events[2]["points"], events[2]["batch"]) == (6, 2)
    assert out["result"]["points"] == 10 and out["result"]["embedded"] == 4
