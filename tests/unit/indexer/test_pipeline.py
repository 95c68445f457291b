"""on eval.completed / index jobs: the AVG-A gate before building, reuse of a finished collection,
the eval run recorded, and the Job row's states."""

from __future__ import annotations

import pytest

from services.indexer.build import build_index
from services.indexer.pipeline import index_and_promote, run_job
from shared.db import session_scope, upsert
from shared.db.models import EvalRun, IndexVersion, Job, JobState


def _eval_run(run_id: str, avg_a: float, model: str = "/models/tiny") -> str:
    with session_scope() as s:
        upsert(
            s,
            EvalRun,
            [
                {
                    "id": run_id,
                    "model": model,
                    "benchmark": "uvrb-mini",
                    "abilities": {"AVG_A": avg_a},
                    "state": "done",
                }
            ],
        )
    return run_id


@pytest.fixture
def builder(qdrant, fake_embedder):
    calls = []

    def build(model, adapter, version, client=None, source=None, dataset=None):  # noqa: ANN001, ANN202
        calls.append(
            {
                "model": model,
                "adapter": adapter,
                "version": version,
                "source": source,
                "dataset": dataset,
            }
        )
        return build_index(
            model,
            adapter,
            version,
            embedder=fake_embedder,
            client=client,
            source=source,
            dataset=dataset,
        )

    build.calls = calls
    return build


def _state(version: str) -> tuple[str, float | None, str | None]:
    with session_scope() as s:
        row = s.get(IndexVersion, version)
        return row.state, row.avg_a, row.eval_run_id


def test_first_model_is_promoted_with_its_eval_run(corpus, qdrant, builder):
    run = _eval_run("run-1", 0.30)
    r = index_and_promote(
        {"eval_run_id": run, "abilities": {"AVG_A": 0.30}}, build=builder, client=qdrant
    )
    assert r["promoted"] and r["eval_run_id"] == run
    assert _state(r["live"]) == ("live", 0.30, run)


def test_a_worse_model_is_refused_before_anything_is_built(corpus, qdrant, builder):
    first = index_and_promote({"abilities": {"AVG_A": 0.30}}, build=builder, client=qdrant)
    assert len(builder.calls) == 1
    r = index_and_promote(
        {"model": "/models/worse", "abilities": {"AVG_A": 0.25}}, build=builder, client=qdrant
    )
    assert not r["promoted"] and not r["built"] and "not better" in r["reason"]
    assert len(builder.calls) == 1 and _state(first["live"])[0] == "live"


def test_the_score_can_come_from_the_eval_run(corpus, qdrant, builder):
    index_and_promote({"abilities": {"AVG_A": 0.30}}, build=builder, client=qdrant)
    r = index_and_promote({"eval_run_id": _eval_run("run-low", 0.1)}, build=builder, client=qdrant)
    assert not r["promoted"] and not r["built"] and "0.1000" in r["reason"]


def test_a_score_is_required_once_a_scored_version_is_live(corpus, qdrant, builder):
    index_and_promote({"abilities": {"AVG_A": 0.30}}, build=builder, client=qdrant)
    r = index_and_promote({"model": "/models/unscored"}, build=builder, client=qdrant)
    assert not r["promoted"] and "no AVG-A" in r["reason"] and len(builder.calls) == 1
    with pytest.raises(ValueError, match="number"):
        index_and_promote({"avg_a": "high"}, build=builder, client=qdrant)


def test_a_finished_collection_of_the_same_model_is_reused(corpus, qdrant, builder, fake_embedder):
    built = build_index(embedder=fake_embedder, client=qdrant)
    batches = list(fake_embedder.batches)
    r = index_and_promote({"abilities": {"AVG_A": 0.4}}, build=builder, client=qdrant)
    assert r["promoted"] and r["reused"] and r["live"] == built["version"]
    assert fake_embedder.batches == batches  # nothing embedded again


def test_a_job_row_moves_to_completed(corpus, qdrant, builder):
    with session_scope() as s:
        s.add(Job(id="job-1", kind="index", state=JobState.pending, params={}))
    r = run_job("job-1", {"avg_a": 0.5}, build=builder, client=qdrant)
    assert r["promoted"]
    with session_scope() as s:
        job = s.get(Job, "job-1")
        assert job.state == JobState.completed and job.error is None


def test_a_refused_job_completes_with_the_reason(corpus, qdrant, builder):
    index_and_promote({"abilities": {"AVG_A": 0.30}}, build=builder, client=qdrant)
    run_job("job-2", {"avg_a": 0.1}, build=builder, client=qdrant)  # no row yet: created here
    with session_scope() as s:
        job = s.get(Job, "job-2")
        assert job.state == JobState.completed and "not better" in job.error and job.kind == "index"


def test_a_failing_job_is_marked_failed(corpus, qdrant, builder, monkeypatch):
    seen = []

    def broken(*a, **k):  # noqa: ANN002, ANN003, ANN202
        with session_scope() as s:
            seen.append(s.get(Job, "job-3").state)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        run_job("job-3", {"avg_a": 0.5}, build=broken, client=qdrant)
    assert seen == [JobState.running]
    with session_scope() as s:
        job = s.get(Job, "job-3")
        assert job.state == JobState.failed and "disk full" in job.error


def test_a_checkpoint_is_indexed_with_its_adapter_from_the_store(corpus, qdrant, builder):
    """eval.completed of a checkpoint names its store prefix, not a path on the evaluator's host."""
    from shared.storage import get_store

    get_store().put_bytes("checkpoints/run-9/00000100/adapter/adapter_config.json", b"{}")
    r = index_and_promote(
        {"checkpoint": "checkpoints/run-9/00000100", "abilities": {"AVG_A": 0.3}},
        build=builder,
        client=qdrant,
    )
    assert r["promoted"]
    adapter = builder.calls[-1]["adapter"]
    assert adapter and adapter.endswith("checkpoints/run-9/00000100/adapter")


def test_a_checkpoint_without_an_adapter_fails_the_job_with_the_reason(corpus, qdrant, builder):
    with pytest.raises(FileNotFoundError):
        run_job(
            "job-ckpt",
            {"checkpoint": "checkpoints/gone/1", "abilities": {"AVG_A": 0.3}},
            build=builder,
            client=qdrant,
        )
    with session_scope() as s:
        job = s.get(Job, "job-ckpt")
        assert job.state == JobState.failed and "has no adapter" in job.error
    assert builder.calls == []
