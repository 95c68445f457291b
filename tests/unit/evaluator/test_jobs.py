"""Eval jobs move their Job row as the indexer's do: an API job, a checkpoint's evaluation and
``univr eval run`` show running, datasets done / total, then completed with the eval run and AVG-A,
or failed with an error naming the dataset; a checkpoint's scores still reach the promotion gate."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from services.evaluator.registry import DATASETS
from shared.db import init_db, session_scope
from shared.db.models import EvalRun, ItemState, Job, JobItem, JobState


@dataclass
class FakeEmbedder:
    """Query ``video i`` and corpus video ``c{i}.mp4`` share a vector (R@1 = 1); calls ``on_embed``
    before each batch, so a test can look at the job while it runs."""

    model_id: str = "fake-0123456789abcdef"
    name_or_path: str = "/models/fake"
    adapter: str | None = None
    on_embed: object = None
    calls: list[int] = field(default_factory=list)

    def embed(self, items):  # noqa: ANN001, ANN201
        if self.on_embed:
            self.on_embed()
        self.calls.append(len(items))
        out = np.zeros((len(items), 8), np.float32)
        for row, it in zip(out, items, strict=True):
            i = int(Path(it.video).stem[1:]) if it.video else int(it.text.split()[-1])
            row[i % 8] = 1.0
        return out


def _dataset(root: Path, name: str, n: int = 3, broken: bool = False) -> None:
    j = root / name / "jsonl"
    (root / name / "videos").mkdir(parents=True)
    j.mkdir(parents=True)
    for i in range(n):
        (root / name / "videos" / f"c{i}.mp4").write_bytes(b"not decoded by the fake embedder")
    rows = {
        "queries": [{"id": f"q{i}", "text": f"video {i}"} for i in range(n)],
        "corpus": [{"id": f"c{i}", "video": f"c{i}.mp4"} for i in range(n)],
        "instances": [{"qid": f"q{i}", "pos": ["nope" if broken else f"c{i}"]} for i in range(n)],
    }
    for fname, items in rows.items():
        (j / f"{fname}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))


@pytest.fixture
def uvrb(tmp_path):
    root = tmp_path / "uvrb"
    for d in DATASETS:
        _dataset(root, d.short)
    return root


@pytest.fixture
def fake(monkeypatch):
    emb = FakeEmbedder()

    def load(model=None, adapter=None):  # noqa: ANN001, ANN202
        emb.adapter = adapter
        return emb

    monkeypatch.setattr("services.evaluator.runner.Embedder", load)
    return emb


def _job(job_id: str) -> tuple[Job, dict[str, ItemState]]:
    with session_scope() as s:
        job = s.get(Job, job_id)
        items = {it.item_key: it.state for it in s.query(JobItem).filter(JobItem.job_id == job_id)}
        s.expunge(job)
        return job, items


def test_an_api_eval_job_shows_running_progress_and_its_result(uvrb, fake, monkeypatch):
    from fastapi.testclient import TestClient

    # the worker's module (its Celery app made before the stub)
    import services.evaluator.tasks as tasks

    monkeypatch.setenv("UNIVR_API__REQUIRE_KEYS", "false")
    monkeypatch.setenv(
        "UNIVR_API__DATA_ROOTS", json.dumps([str(uvrb.parent)])
    )  # jobs read only there
    from shared.config import get_settings

    get_settings.cache_clear()
    sent = []

    class Broker:
        def send_task(self, name, args, queue):  # noqa: ANN001, ANN202
            sent.append((name, args, queue))

    monkeypatch.setattr("shared.queue.get_celery", lambda: Broker())
    from services.api.app import create_app

    client = TestClient(create_app())
    r = client.post("/v1/jobs/eval", json={"params": {"uvrb": str(uvrb)}})
    assert r.status_code == 200, r.text
    job_id = r.json()["job"]
    assert client.get(f"/v1/jobs/{job_id}").json()["state"] == "pending"
    ((name, (sent_id, params), queue),) = sent
    assert name == "evaluator.run" and sent_id == job_id and queue == "eval"

    seen = []
    fake.on_embed = lambda: seen.append(client.get(f"/v1/jobs/{job_id}").json())
    out = tasks.run_eval(job_id, params)  # as the eval worker runs it

    assert {v["state"] for v in seen} == {"running"}
    progress = [v["progress"] for v in seen]
    assert progress[0] == {"done": 0, "total": 16} and progress[-1] == {"done": 15, "total": 16}
    assert [p["done"] for p in progress] == sorted(
        p["done"] for p in progress
    )  # it only moves forward
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["state"] == "completed" and job["error"] is None
    assert job["progress"] == {"done": 16, "total": 16} and job["items"] == {"done": 16}
    assert job["result"]["eval_run_id"] == out["result"]["eval_run_id"] and job["result"][
        "AVG_A"
    ] == pytest.approx(1.0)
    with session_scope() as s:
        assert s.get(EvalRun, out["result"]["eval_run_id"]).abilities["AVG_A"] == pytest.approx(1.0)
    dash = client.get("/v1/status").json()["jobs"]
    assert next(j for j in dash if j["id"] == job_id)["result"]["AVG_A"] == pytest.approx(1.0)


def test_a_failing_dataset_fails_the_job_with_its_name(uvrb, fake):
    import shutil

    from services.evaluator.jobs import run_eval_job
    from services.evaluator.layout import LayoutError

    shutil.rmtree(uvrb / "DiDeMo")
    _dataset(uvrb, "DiDeMo", broken=True)
    init_db()
    with session_scope() as s:
        s.add(Job(id="job-bad", kind="eval", state=JobState.pending, params={}))
    with pytest.raises(LayoutError):
        run_eval_job("job-bad", {"uvrb": str(uvrb), "datasets": "MSRVTT,DiDeMo,CRB-G"})
    job, items = _job("job-bad")
    assert job.state == JobState.failed and job.error.startswith("dataset DiDeMo: LayoutError:")
    assert "unknown corpus id" in job.error and job.result is None
    assert items == {
        "MSRVTT": ItemState.done,
        "DiDeMo": ItemState.failed,
        "CRB-G": ItemState.pending,
    }


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"uvrb": "/nonexistent/uvrb"}, "FileNotFoundError: no UVRB copy at /nonexistent/uvrb"),
        ({"datasets": ["MSRVTT", "NOPE"]}, "unknown UVRB dataset 'NOPE'"),
    ],
)
def test_bad_params_fail_the_job_before_any_work(uvrb, fake, params, error):
    from services.evaluator.jobs import run_eval_job

    with pytest.raises((FileNotFoundError, KeyError)):
        run_eval_job("job-params", {"uvrb": str(uvrb), **params})  # no row yet: created here
    job, items = _job("job-params")
    assert job.kind == "eval" and job.state == JobState.failed and error in job.error
    assert items == {} and fake.calls == []


def test_a_checkpoint_evaluation_is_a_job_and_still_reaches_the_promotion_gate(
    uvrb, fake, monkeypatch
):
    import services.evaluator.tasks as tasks
    from services.indexer.pipeline import _avg_a

    emitted = []
    monkeypatch.setattr(tasks, "emit", lambda event, payload: emitted.append((event, payload)))
    payload = {
        "run_id": "run-1",
        "step": 10,
        "checkpoint": "checkpoints/run-1/10",
        "model": "/models/fake",
        "uvrb": str(uvrb),
    }
    from shared.storage import get_store

    get_store().put_bytes(
        "checkpoints/run-1/10/adapter/adapter_config.json", b"{}"
    )  # as the trainer saves it
    out = tasks.on_checkpoint_ready("checkpoint.ready", payload)
    # the checkpoint is scored with its adapter (fetched from the store), not as the bare base model
    assert fake.adapter and (Path(fake.adapter) / "adapter_config.json").is_file()
    ((event, sent),) = emitted
    assert event == "eval.completed" and out["state"] == "completed"
    assert (
        sent["eval_run_id"] == out["result"]["eval_run_id"]
        and sent["abilities"] == out["result"]["abilities"]
    )
    assert sent["checkpoint"] == payload["checkpoint"] and sent["eval_run_id"]
    assert _avg_a(sent) == pytest.approx(
        1.0
    )  # what the indexer's gate compares with the live version
    job, items = _job(tasks.checkpoint_job_id(payload))
    assert job.state == JobState.completed and job.result["eval_run_id"] == sent["eval_run_id"]
    assert job.params["checkpoint"] == payload["checkpoint"] and set(items.values()) == {
        ItemState.done
    }
    # a checkpoint whose evaluation fails emits nothing, and its job says why
    with pytest.raises(FileNotFoundError):
        tasks.on_checkpoint_ready(
            "checkpoint.ready", {**payload, "checkpoint": "c/2", "uvrb": "/nonexistent"}
        )
    assert len(emitted) == 1
    failed, _ = _job(
        tasks.checkpoint_job_id({**payload, "checkpoint": "c/2", "uvrb": "/nonexistent"})
    )
    assert failed.state == JobState.failed and "no UVRB copy" in failed.error


def test_univr_eval_run_is_a_job_too(uvrb, fake, tmp_path):
    from typer.testing import CliRunner

    from shared.cli import build_app

    out = tmp_path / "r.json"
    r = CliRunner().invoke(
        build_app(),
        ["eval", "run", "--uvrb", str(uvrb), "--datasets", "MSRVTT,CMRB", "--out", str(out)]
        + ["--json"],
    )
    assert r.exit_code == 0, r.output
    printed = json.loads(r.stdout)
    job, items = _job(printed["job"])
    assert job.kind == "eval" and job.state == JobState.completed
    assert job.result["out"] == str(out) and job.result["eval_run_id"] == printed["eval_run_id"]
    assert job.result["eval_run_id"] == json.loads(out.read_text())["eval_run_id"]
    assert items == {"MSRVTT": ItemState.done, "CMRB": ItemState.done}
    bad = CliRunner().invoke(
        build_app(), ["eval", "run", "--uvrb", str(tmp_path / "none"), "--out", str(out)]
    )
    assert bad.exit_code == 2 and "no UVRB copy" in bad.output
    job_id = bad.output.rsplit("(job ", 1)[1].split(")")[0]
    assert _job(job_id)[0].state == JobState.failed
