"""Load on the real API process (uvicorn on loopback): concurrent search clients for a bounded time
(latency percentiles, 0 errors), and concurrent job submissions that all run to completion."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.trainer.conftest import univr
from tests.reliability.figures import percentile, record, size
from tests.reliability.services import free_port, wait_port

QUERIES = [
    "a red circle moving left",
    "a green square",
    "two objects on a dark background",
    "blue triangle",
    "something moves to the right",
    "a yellow star spinning",
    "the camera pans",
    "an orange shape",
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """A home with synthesized clips and a live index, served by ``univr api serve`` in its own
    process."""
    from shared.world import generate

    root = tmp_path_factory.mktemp("load-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIVR_")}
    env.update(
        UNIVR_HOME=str(root / "home"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        UNIVR_API__DATA_ROOTS=f'["{root / "jobs"}"]',
    )  # where API jobs may name sources
    generate(root / "raw", size(2, 6), seed=41, workers=2)
    univr("synth", "run", str(root / "raw" / "manifest.jsonl"), "--json", "--workers", "1", env=env)
    univr("model", "tiny", "--out", str(root / "home" / "models" / "tiny"), env=env)
    import json

    built = json.loads(univr("index", "build", "--json", env=env).strip().splitlines()[-1])
    univr("index", "promote", built["version"], "--force", env=env)
    key = (
        univr("apikey", "create", "--name", "load", "--scopes", "search,jobs", env=env)
        .strip()
        .splitlines()[-1]
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from shared.cli import main; main()",
            "api",
            "serve",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_port(port, timeout=120)
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {key}"}
        warm = httpx.post(
            f"{base}/v1/search", json={"text": "warm up", "top_k": 5}, headers=headers, timeout=120
        )
        assert warm.status_code == 200, warm.text
        yield {
            "base": base,
            "headers": headers,
            "env": env,
            "root": root,
            "points": built["points"],
        }
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_concurrent_search_clients(served):
    clients, duration = size(4, 8), float(size(6, 60))
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client(i: int) -> None:
        with httpx.Client(base_url=served["base"], headers=served["headers"], timeout=60) as c:
            start.wait()
            end = time.monotonic() + duration
            n = 0
            while time.monotonic() < end:
                body = {"text": QUERIES[(i + n) % len(QUERIES)], "top_k": 1 + (i + n) % 10}
                t0 = time.perf_counter()
                try:
                    r = c.post("/v1/search", json=body)
                    ok = r.status_code == 200 and len(r.json()["results"]) == min(
                        body["top_k"], served["points"]
                    )
                    why = f"{r.status_code}: {r.text[:200]}"
                except httpx.HTTPError as exc:
                    ok, why = False, repr(exc)
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    if not ok:
                        errors.append(why)
                n += 1

    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    record(
        f"api: {clients} search clients",
        requests=len(latencies),
        errors=len(errors),
        p50_ms=1000 * percentile(latencies, 50),
        p95_ms=1000 * percentile(latencies, 95),
        p99_ms=1000 * percentile(latencies, 99),
        wall_s=time.monotonic() - t0,
    )
    assert latencies and not errors, errors[:5]


@pytest.mark.slow
def test_concurrent_job_submissions(served, monkeypatch):
    """N synth jobs submitted at once through the API: every one is accepted, runs on the workers
    and completes, followed by the id the API returned; no job is lost or created twice."""
    from services.synth.jobs import start_local_workers, stop_workers
    from shared.config import get_settings
    from shared.world import generate

    n = size(3, 12)
    sources = []
    for i in range(n):
        out = Path(served["root"]) / "jobs" / f"src{i}"
        generate(out, 1, seed=500 + i, workers=1)
        sources.append(str(out))
    responses: list[httpx.Response | Exception] = [None] * n  # type: ignore[list-item]
    start = threading.Barrier(n)

    def submit(i: int) -> None:
        start.wait()
        try:
            responses[i] = httpx.post(
                f"{served['base']}/v1/jobs/synth",
                json={"params": {"source": sources[i]}},
                headers=served["headers"],
                timeout=60,
            )
        except httpx.HTTPError as exc:
            responses[i] = exc

    t0 = time.monotonic()
    threads = [threading.Thread(target=submit, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    accepted = [
        r.json()["job"] for r in responses if isinstance(r, httpx.Response) and r.status_code == 200
    ]
    rejected = [
        r if isinstance(r, Exception) else f"{r.status_code}: {r.text[:200]}"
        for r in responses
        if not (isinstance(r, httpx.Response) and r.status_code == 200)
    ]

    monkeypatch.setenv("UNIVR_HOME", served["env"]["UNIVR_HOME"])
    get_settings.cache_clear()
    states: dict[str, str] = {}
    workers = start_local_workers(1)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            for job in accepted:
                r = httpx.get(
                    f"{served['base']}/v1/jobs/{job}", headers=served["headers"], timeout=60
                )
                states[job] = r.json()["state"] if r.status_code == 200 else f"http {r.status_code}"
            if all(s in ("completed", "failed") for s in states.values()):
                break
            time.sleep(0.5)
    finally:
        stop_workers(workers)
    from sqlalchemy import func, select

    from shared.db import session_scope
    from shared.db.models import Job

    with session_scope() as s:
        synth_jobs = s.scalar(select(func.count()).select_from(Job).where(Job.kind == "synth"))
    completed = sum(1 for s in states.values() if s == "completed")
    record(
        f"api: {n} concurrent job submissions",
        expected=n,
        completed=completed,
        lost=n - completed,
        duplicated=max(0, synth_jobs - n - 1),
        errors=len(rejected),
        wall_s=time.monotonic() - t0,
    )
    assert not rejected, rejected
    assert len(set(accepted)) == n
    assert completed == n, states
    assert synth_jobs == n + 1  # the n submitted + the job that built the served corpus
