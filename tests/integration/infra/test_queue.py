"""A real Celery worker process runs tasks through RabbitMQ, Redis and the embedded broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from shared.config import Settings
from shared.queue import QUEUE_EVAL, QUEUE_IO, emit, make_celery, route_for

HERE = Path(__file__).parent


def _start_worker(env: dict[str, str], queues: str, concurrency: int = 1) -> subprocess.Popen:
    code = (
        "from shared.queue import run_worker; "
        f"run_worker({queues.split(',')!r}, concurrency={concurrency}"
        ", include=['univr_test_tasks']"
        f", hostname='t-{uuid.uuid4().hex[:6]}@%h')"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        if proc.poll() is not None:
            raise AssertionError(
                f"worker exited {proc.returncode}: {proc.stderr.read().decode()[-2000:]}"
            )
        time.sleep(0.2)
    raise AssertionError(f"task did not run within {timeout}s")


def _roundtrip(
    broker_url: str, tmp_path: Path, univr_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = dict(
        os.environ,
        UNIVR_BROKER__URL=broker_url,
        UNIVR_HOME=str(univr_home),
        PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    )
    monkeypatch.setenv("UNIVR_BROKER__URL", broker_url)  # restored after the test
    app = make_celery(Settings())
    queue_tag = uuid.uuid4().hex
    marker = tmp_path / f"marker-{queue_tag}"
    event_marker = tmp_path / f"event-{queue_tag}"
    with app.connection_for_write() as conn:  # start from empty queues (shared brokers)
        for q in (QUEUE_IO, QUEUE_EVAL):
            try:
                conn.default_channel.queue_purge(q)
            except Exception:  # noqa: BLE001 - not declared yet
                pass
    app.send_task(
        "synth.io_touch", args=[str(marker), queue_tag], queue=route_for("synth.io_touch")
    )
    emit(
        "checkpoint.ready",
        {
            "run_id": "r",
            "step": 1,
            "checkpoint": "checkpoints/r/1",
            "model": "m",
            "marker": str(event_marker),
        },
        app=app,
    )
    proc = _start_worker(env, f"{QUEUE_IO},{QUEUE_EVAL}")
    try:
        assert _wait_for(marker, proc) == queue_tag
        assert _wait_for(event_marker, proc) == "checkpoint.ready"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.rabbitmq
def test_worker_over_rabbitmq(rabbitmq_url, tmp_path, univr_home, monkeypatch):
    _roundtrip(rabbitmq_url, tmp_path, univr_home, monkeypatch)


@pytest.mark.redis
def test_worker_over_redis(redis_url, tmp_path, univr_home, monkeypatch):
    _roundtrip(redis_url.rsplit("/", 1)[0] + "/5", tmp_path, univr_home, monkeypatch)


def test_worker_over_embedded_broker(tmp_path, univr_home, monkeypatch):
    _roundtrip("filesystem://", tmp_path, univr_home, monkeypatch)


def test_unknown_event_is_refused():
    with pytest.raises(ValueError, match="unknown event"):
        emit("no.such.event", {})


def test_an_event_missing_a_field_is_refused_before_it_is_sent():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="checkpoint"):
        emit("checkpoint.ready", {"run_id": "r", "step": 1, "model": "m"})


def test_time_limits_must_nest(monkeypatch):
    monkeypatch.setenv("UNIVR_BROKER__HARD_TIME_LIMIT_S", "9999")
    with pytest.raises(ValueError, match="visibility"):
        make_celery(Settings())


@pytest.mark.parametrize(("concurrency", "setting"), [(2, None), (1, None), (1, "1")])
def test_pool_children_share_the_cores_between_them(
    tmp_path, univr_home, monkeypatch, concurrency, setting
):
    """Two prefork children with torch's default (a thread per core each) would oversubscribe the
    cores; each gets cores / pool size, unless ``model.torch_threads`` says otherwise (a setting at
    or below the core count: torch caps ``OMP_NUM_THREADS`` there, and torch is not loaded yet)."""
    from shared.threads import cpu_cores

    env = dict(
        os.environ,
        UNIVR_BROKER__URL="filesystem://",
        UNIVR_HOME=str(univr_home),
        PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    )
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "UNIVR_MODEL__TORCH_THREADS"):
        env.pop(var, None)
    if setting:
        env["UNIVR_MODEL__TORCH_THREADS"] = setting
    monkeypatch.setenv("UNIVR_BROKER__URL", "filesystem://")
    app = make_celery(Settings())
    marker = tmp_path / "threads"
    app.send_task("synth.io_threads", args=[str(marker)], queue=route_for("synth.io_threads"))
    proc = _start_worker(env, QUEUE_IO, concurrency)
    try:
        got = int(_wait_for(marker, proc))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    if setting:
        assert got == int(setting)
    elif concurrency > 1:
        assert got == max(1, cpu_cores() // concurrency)
    else:  # a worker alone keeps torch's default
        default = subprocess.run(
            [sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert got == int(default)


def test_time_limits_hold_for_per_item_queues_and_long_jobs_are_acked_on_receipt(monkeypatch):
    """A train, eval or index task lasts as long as its leased run: no time limit, acked at once
    (the broker's consumer timeout never sees it unacked); media/caption/io keep both limits."""
    monkeypatch.setenv("UNIVR_BROKER__SOFT_TIME_LIMIT_S", "2")
    monkeypatch.setenv("UNIVR_BROKER__HARD_TIME_LIMIT_S", "3")
    app = make_celery(Settings())

    def noop() -> None:
        pass

    for name in (
        "trainer.t",
        "evaluator.t",
        "indexer.t",
        "synth.t",
        "synth.caption_t",
        "synth.io_t",
    ):
        task = app.tasks[app.task(name=name)(noop).name]
        long_job = route_for(name) in ("train", "eval", "index")
        assert (task.soft_time_limit, task.time_limit) == ((None, None) if long_job else (2, 3)), (
            name
        )
        assert task.acks_late is (not long_job) and task.reject_on_worker_lost is (not long_job), (
            name
        )
