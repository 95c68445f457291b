"""The whole loop through the broker, on `make stack`'s processes (the stack profile, compose.yaml's
commands): synth submit of a generated corpus → data snapshot → train submit → checkpoint.ready →
evaluation → eval.completed → promotion → a search over HTTP with an API key.

The training job (~1-2 min) outlives every task time limit (set to 8/12 s; per-item tasks keep
them) on a private RabbitMQ whose ``consumer_timeout`` is 15 s, and its trainer worker is SIGKILLed
(with its run) once mid-run, after a checkpoint: the worker comes back (compose's restart policy),
its sweeper finds the expired lease, re-sends the job, claims it and resumes from the checkpoint to
the same final weights as an uninterrupted run of the same config. A duplicate delivery of the
finished job's message runs nothing. The test prints the job's timeline (claims, heartbeats, lease
expiry, takeover, resume).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.reliability.services import PrivateRabbitMQ, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
API = "http://127.0.0.1:8080"
SERVICES = (
    "postgres,rabbitmq,minio,minio-init,"
    "qdrant,migrate,synth-worker,caption-worker,trainer,evaluator,indexer,api"
)
STEPS, CHECKPOINT_EVERY = 12, 6


class ShortConsumerTimeoutRabbitMQ(PrivateRabbitMQ):
    """A private RabbitMQ that closes the channel of any consumer holding a message unacked for
    more than ``consumer_timeout_ms`` (a long task under acks_late would be cut off by it)."""

    def __init__(self, consumer_timeout_ms: int) -> None:
        super().__init__()
        (self.dir / "rabbitmq.conf").write_text(f"consumer_timeout = {consumer_timeout_ms}\n")

    def _env(self) -> dict[str, str]:
        return {**super()._env(), "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf")}


def _wait(what: str, check, timeout: float = 300.0, every: float = 0.5):  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Timeline:
    """Polls the train job's row and keeps what changed: claims, heartbeats, expiry, state."""

    def __init__(self, db_url: str, job_id: str) -> None:
        from sqlalchemy import create_engine

        self.engine, self.job_id, self.lines = create_engine(db_url), job_id, []
        self.t0, self.stop = time.monotonic(), threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def note(self, text: str) -> None:
        self.lines.append(f"{time.monotonic() - self.t0:7.1f} s  {text}")

    def _poll(self) -> None:
        from datetime import UTC, datetime

        from sqlalchemy import text

        last: dict = {}
        beats = 0
        while not self.stop.wait(0.2):
            with self.engine.connect() as conn:
                row = (
                    conn.execute(
                        text(
                            "SELECT owner, attempts, state, "
                            "heartbeat_at, lease_expires_at, progress "
                            "FROM jobs WHERE id = :i"
                        ),
                        {"i": self.job_id},
                    )
                    .mappings()
                    .first()
                )
            if row is None:
                continue
            step = (row["progress"] or {}).get("step")
            if row["owner"] != last.get("owner"):
                self.note(
                    f"claimed by {row['owner']} (attempt {row['attempts']}, state {row['state']})"
                )
                beats = 0
            elif row["heartbeat_at"] != last.get("heartbeat_at"):
                beats += 1
                if beats <= 2 or beats % 10 == 0:
                    self.note(
                        f"heartbeat {beats} (step {step})"
                        f", lease until {row['lease_expires_at']:%H:%M:%S}"
                    )
            exp = row["lease_expires_at"]
            if (
                row["state"] == "running"
                and exp is not None
                and exp < datetime.now(UTC)
                and last.get("expired") != row["owner"]
            ):
                self.note(f"lease of {row['owner']} expired (last step {step})")
                last["expired"] = row["owner"]
            if (row["progress"] or {}).get("resumed_from") != (last.get("progress") or {}).get(
                "resumed_from"
            ):
                self.note(f"resumed from step {row['progress']['resumed_from']}")
            if row["state"] != last.get("state"):
                self.note(f"state {row['state']}")
            last.update(dict(row))

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.engine.dispose()


def _kill_tree(pid: int) -> list[int]:
    """SIGKILL a process and everything under it (a worker, its pool and its run: a dead host)."""
    import psutil

    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)]
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    return [p.pid for p in procs]


def test_the_loop_through_the_broker_survives_a_killed_trainer(postgres_url, tmp_path, monkeypatch):
    import httpx
    import psutil
    from safetensors.torch import load_file
    from sqlalchemy import create_engine, text

    from shared import stack as stack_mod

    if stack_mod.port_open(8080):
        pytest.fail("port 8080 (compose's API port) is taken: stop what serves it")
    rmq = ShortConsumerTimeoutRabbitMQ(consumer_timeout_ms=15_000)
    rmq.start()
    home, state = tmp_path / "home", tmp_path / ".stack"
    for key in list(os.environ):
        if key.startswith("UNIVR_"):
            monkeypatch.delenv(key)
    knobs = {
        "UNIVR_HOME": str(home),
        "UNIVR_JOBS__LEASE_S": "4",
        "UNIVR_JOBS__HEARTBEAT_S": "1",
        "UNIVR_JOBS__SWEEP_S": "1",
        "UNIVR_BROKER__SOFT_TIME_LIMIT_S": "8",
        "UNIVR_BROKER__HARD_TIME_LIMIT_S": "12",
        "UNIVR_MODEL__BATCH_SIZE": "8",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    for k, v in knobs.items():
        monkeypatch.setenv(k, v)
    db = postgres_url.rsplit("/", 1)[1]
    args = [
        "--dir",
        str(state),
        "--only",
        SERVICES,
        "--set",
        f"POSTGRES_DB={db}",
        "--set",
        f"EMBED_MODEL={home / 'models' / 'tiny'}",
        "--port",
        f"rabbitmq={rmq.port}",
        "--port",
        f"minio={free_port()}",
        "--port",
        f"qdrant={free_port()}",
    ]
    log = open(tmp_path / "stack.out", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "shared.stack", *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        start_new_session=True,
    )
    timeline, t0, passed, left = None, time.monotonic(), False, []

    def mark(what: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f} s] {what}", flush=True)

    try:
        _wait("GET /healthz", lambda: _healthy(proc, tmp_path), timeout=300)
        mark("stack up: /healthz answers")
        # the CLI as a user of the stack runs it: the same environment as the API service
        st = stack_mod.Stack(ROOT / "compose.yaml", state, {}, {})
        cli_env = _cli_env(args, st)

        def univr(*a: str, timeout: float = 300) -> str:
            r = subprocess.run(
                [str(Path(sys.executable).parent / "univr"), *a],
                env=cli_env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            assert r.returncode == 0, f"univr {' '.join(a)}: {r.stdout[-2000:]} {r.stderr[-3000:]}"
            return r.stdout

        from shared.world import generate

        generate(tmp_path / "raw", 8, seed=5, workers=1)
        services_home = Path(cli_env["UNIVR_HOME"])  # the services' home (compose: a volume)
        univr(
            "uvrb",
            "mini",
            "--out",
            str(services_home / "uvrb-mini"),
            "--seed",
            "100005",
            "--n",
            "6",
            "--long-n",
            "3",
        )
        synth_job = json.loads(
            univr("synth", "submit", str(tmp_path / "raw" / "manifest.jsonl"), "--json")
        )["job"]
        engine = create_engine(postgres_url)

        def job_state(job_id: str) -> str | None:
            with engine.connect() as conn:
                return conn.execute(
                    text("SELECT state FROM jobs WHERE id = :i"), {"i": job_id}
                ).scalar()

        _wait(
            "the synthesis job",
            lambda: job_state(synth_job) in ("completed", "failed"),
            timeout=300,
        )
        assert job_state(synth_job) == "completed"
        mark("synthesis job completed")
        snap = json.loads(univr("data", "snapshot", "--name", "e2e", "--json"))
        assert snap["counts"], snap
        config = {
            "snapshot": snap["id"],
            "model": str(home / "models" / "tiny"),
            "steps": STEPS,
            "batch_size": 4,
            "seed": 3,
            "preset": "tiny",
            "sampler": "uniform",
            "overrides": {"checkpoint_every": CHECKPOINT_EVERY},
        }
        (tmp_path / "train.yaml").write_text(
            yaml.safe_dump({**config, "out": str(tmp_path / "train-out")})
        )
        train_job = json.loads(
            univr("train", "submit", "--config", str(tmp_path / "train.yaml"), "--json")
        )["job"]
        timeline = Timeline(postgres_url, train_job)
        mark(f"train job {train_job} submitted")

        # mid-run, after the first checkpoint: SIGKILL the trainer worker and its run (a dead host)
        def past_checkpoint() -> bool:
            with engine.connect() as conn:
                saved = conn.execute(text("SELECT count(*) FROM checkpoints")).scalar()
                step = conn.execute(
                    text("SELECT progress->>'step' FROM jobs WHERE id = :i"), {"i": train_job}
                ).scalar()
            return saved >= 1 and step is not None and int(step) > CHECKPOINT_EVERY

        _wait("the first checkpoint", past_checkpoint, timeout=300, every=0.2)
        loop_pid = json.loads((state / "pids.json").read_text())["trainer"]
        worker = psutil.Process(loop_pid).children()[0]
        killed = _kill_tree(worker.pid)
        timeline.note(f"SIGKILL trainer worker {worker.pid} and its run ({len(killed)} processes)")
        mark("trainer worker killed")
        # an uninterrupted run of the same config, for its final weights
        (tmp_path / "ref.yaml").write_text(
            yaml.safe_dump({**config, "out": str(tmp_path / "ref-out"), "run_id": "uninterrupted"})
        )
        ref = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "univr"),
                "train",
                "run",
                "--config",
                str(tmp_path / "ref.yaml"),
            ],
            env=cli_env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
        )

        _wait(
            "the train job",
            lambda: job_state(train_job) in ("completed", "failed", "cancelled"),
            timeout=400,
        )
        assert job_state(train_job) == "completed"
        mark("train job completed")
        # a duplicate delivery of the finished job's message runs nothing (the lease refuses it)
        univr("train", "submit", "--config", str(tmp_path / "train.yaml"))
        shown = lambda: json.loads(univr("job", "show", train_job, "--json"))  # noqa: E731
        events = _wait(
            "the refused duplicate",
            lambda: (lambda t: t if "refused" in [e["event"] for e in t] else None)(
                shown()["timeline"]
            ),
            timeout=60,
        )
        assert ref.wait(timeout=400) == 0
        timeline.close()
        print("\njob timeline (train job " + train_job + "):\n" + "\n".join(timeline.lines))
        print(
            "lease events:\n"
            + "\n".join(
                f"  {e['at']} {e['event']} attempt {e['attempt']} {e.get('owner', '')}"
                f" {e.get('step', '')}"
                for e in events
            )
        )
        names = [e["event"] for e in events]
        assert (
            names[:2] == ["claimed", "expired"]
            and "takeover" in names
            and names.count("completed") == 1
        )
        resumed = [e for e in events if e["event"] == "resumed"]
        assert resumed and resumed[-1]["step"] == CHECKPOINT_EVERY
        assert shown()["attempts"] == 2  # the takeover's claim; the duplicate was refused, not run
        final = load_file(str(tmp_path / "train-out" / "adapter" / "adapter_model.safetensors"))
        reference = load_file(str(tmp_path / "ref-out" / "adapter" / "adapter_model.safetensors"))
        assert final.keys() == reference.keys()
        diff = max(float((final[k] - reference[k]).abs().max()) for k in final)
        print(f"final weights vs the uninterrupted run: max |diff| = {diff:.2e}")
        assert diff <= 1e-5

        # checkpoint.ready → evaluation → eval.completed → promotion of the final checkpoint
        def promoted() -> dict | None:
            with engine.connect() as conn:
                rows = conn.execute(
                    text("SELECT kind, state, result FROM jobs WHERE kind IN ('eval', 'index')")
                ).all()
            if (
                any(r.state in ("pending", "running") for r in rows)
                or len([r for r in rows if r.kind == "index"]) < 2
            ):
                return None
            return {"rows": rows}

        rows = _wait("evaluations and promotions of both checkpoints", promoted, timeout=400)[
            "rows"
        ]
        mark("evaluations and promotions done")
        print(
            "eval/index jobs:", [(r.kind, r.state, (r.result or {}).get("promoted")) for r in rows]
        )
        assert all(r.state == "completed" for r in rows) and any(
            (r.result or {}).get("promoted") for r in rows
        )
        key = univr("apikey", "create", "--name", "e2e").strip().splitlines()[-1]
        r = httpx.post(
            f"{API}/v1/search",
            json={"text": "a red circle moving left", "top_k": 3},
            headers={"Authorization": f"Bearer {key}"},
            timeout=120,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        print("search:", json.dumps(body)[:400])
        assert body["results"] and all(r["clip_id"] for r in body["results"])
        # the live version answering is one this run's checkpoints were built into and promoted
        with engine.connect() as conn:
            live = conn.execute(
                text("SELECT id, adapter, eval_run_id FROM index_versions WHERE state = 'live'")
            ).one()
        promoted_versions = [
            (r.result or {}).get("live") for r in rows if (r.result or {}).get("promoted")
        ]
        assert live.id in promoted_versions and live.eval_run_id
        assert httpx.post(f"{API}/v1/search", json={"text": "x"}, timeout=30).status_code == 401
        passed = True
    finally:
        if timeline is not None:
            timeline.close()
        tree = (
            [proc, *psutil.Process(proc.pid).children(recursive=True)]
            if proc.poll() is None
            else []
        )
        tree = [psutil.Process(p.pid) for p in tree if psutil.pid_exists(p.pid)]
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the stack stops every process it started
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(1)
        left = [p.pid for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        print(f"Ctrl-C: {len(tree)} processes of the stack, {len(left)} left behind {left}")
        log.close()
        print(
            "stack output (tail):\n" + (tmp_path / "stack.out").read_text(errors="replace")[-3000:]
        )
        rmq.close()
    assert passed and not left, f"processes left behind after Ctrl-C: {left}"


def _healthy(proc: subprocess.Popen, tmp_path: Path) -> bool:
    import httpx

    if proc.poll() is not None:
        raise AssertionError(
            "the stack exited: " + (tmp_path / "stack.out").read_text(errors="replace")[-4000:]
        )
    try:
        return httpx.get(f"{API}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _cli_env(args: list[str], st) -> dict[str, str]:  # noqa: ANN001
    """The API service's environment, as the stack resolved it."""
    from shared import stack as stack_mod

    variables = {**stack_mod.HOST_DEFAULTS, **os.environ}
    ports = dict(stack_mod.LOCAL_PORTS)
    for i, a in enumerate(args):
        if a == "--port":
            name, port = args[i + 1].split("=", 1)
            ports[name] = int(port)
        if a == "--set":
            k, v = args[i + 1].split("=", 1)
            variables[k] = v
    st.variables, st.ports = variables, ports
    api = next(s for s in st.services() if s.name == "api")
    return st.env_of(api)
