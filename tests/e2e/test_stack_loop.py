"""The whole loop through the broker, on `make stack`'s processes (the stack profile, compose.yaml's
commands), with one worker of each kind SIGKILLed once while it holds work: synth submit of a
generated corpus → data snapshot → train submit → checkpoint.ready → evaluation → eval.completed →
promotion (inside the indexer) → a search over HTTP with an API key.

Each worker is killed with everything under it (its pool, its run: a dead host) and comes back
(compose's restart policy, the stack's restart loop):

- synth-worker, while a media task runs; caption-worker, while a caption task runs: their unacked
  messages go back to the queue (acks_late) and are redelivered; every item ends once.
- trainer, mid-run after a checkpoint: the run (~40 s) outlives every task time limit (8/12 s) on a
  private RabbitMQ whose ``consumer_timeout`` is 15 s; the lease expires, the restarted worker's
  sweeper re-sends the job, a claim takes it over and resumes from the checkpoint to the same final
  weights as an uninterrupted run of the same config. A duplicate delivery runs nothing.
- evaluator, after a dataset was scored: the takeover starts at the first unscored dataset.
- indexer, after a batch was upserted: the takeover embeds only the points after it.

Nothing is lost (every job completes) and nothing is done twice (each item's stage ends once, each
dataset is scored once, each point embedded once, the training run's steps add up). The test prints
the jobs' timeline: claims, heartbeats, lease expiry, takeover, resume step / dataset / batch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.e2e import stack_probe as probe
from tests.reliability.services import PrivateRabbitMQ, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
API = probe.API
SERVICES = (
    "postgres,rabbitmq,minio,minio-init,"
    "qdrant,migrate,synth-worker,caption-worker,trainer-cpu,evaluator,indexer,api"
)
KILLED = ("synth-worker", "caption-worker", "trainer-cpu", "evaluator", "indexer")
STEPS, CHECKPOINT_EVERY = 8, 4


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
    """Polls the jobs and their events; keeps what changed: claims, heartbeats (the first two and
    every tenth), lease expiry, the lease events (takeover, resumed with its step / dataset /
    batch, refused, completed), a synthesis stage started again after a kill, state changes."""

    def __init__(self, engine) -> None:  # noqa: ANN001
        self.engine, self.lines, self.t0 = engine, [], time.monotonic()
        self.jobs: dict[str, dict] = {}
        self.last_event, self.stop = 0, threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def note(self, text: str) -> None:
        self.lines.append(f"{time.monotonic() - self.t0:7.1f} s  {text}")

    def label(self, job_id: str) -> str:
        return f"{self.jobs.get(job_id, {}).get('kind', 'job'):<5} {job_id[:8]}"

    def _loop(self) -> None:
        while not self.stop.wait(0.2):
            try:
                with self.engine.connect() as conn:
                    self._rows(conn)
                    self._events(conn)
            except Exception as exc:  # noqa: BLE001 - a poll that failed: the next one
                self.note(f"(timeline poll failed: {exc!r})")

    def _rows(self, conn) -> None:  # noqa: ANN001
        from datetime import UTC, datetime

        from sqlalchemy import text

        for row in conn.execute(
            text(
                "SELECT id, kind, owner, attempts, state, heartbeat_at, lease_expires_at, "
                "progress FROM jobs"
            )
        ).mappings():
            row, last = dict(row), self.jobs.get(row["id"])
            progress = row["progress"] or {}
            where = {k: progress[k] for k in ("step", "dataset", "points") if k in progress}
            if last is None:
                self.jobs[row["id"]] = last = {"kind": row["kind"], "beats": 0}
            if row["owner"] and row["owner"] != last.get("owner"):
                self.note(f"{self.label(row['id'])} claimed by {row['owner']} ({row['attempts']})")
                last["beats"] = 0
            elif row["heartbeat_at"] and row["heartbeat_at"] != last.get("heartbeat_at"):
                last["beats"] += 1
                if last["beats"] <= 2 or last["beats"] % 10 == 0:
                    self.note(f"{self.label(row['id'])} heartbeat {last['beats']} {where}")
            exp = row["lease_expires_at"]
            if row["state"] == "running" and exp and exp < datetime.now(UTC):
                if last.get("expired") != row["owner"]:
                    self.note(f"{self.label(row['id'])} lease of {row['owner']} expired {where}")
                    last["expired"] = row["owner"]
            if row["state"] != last.get("state"):
                self.note(f"{self.label(row['id'])} state {row['state']}")
            last.update(row)

    def _events(self, conn) -> None:  # noqa: ANN001
        from sqlalchemy import text

        for e in conn.execute(
            text(
                "SELECT id, job_id, item_id, stage, state, attempt, reason, detail FROM job_events "
                "WHERE id > :last AND (stage = 'lease' OR (state = 'started' AND attempt > 1)) "
                "ORDER BY id"
            ),
            {"last": self.last_event},
        ).mappings():
            self.last_event = e["id"]
            detail = {
                k: v
                for k, v in (e["detail"] or {}).items()
                if k in ("step", "dataset", "skipped", "points", "batch", "of")
            }
            if e["stage"] == "lease" and e["state"] == "expired":
                self.note(f"{self.label(e['job_id'])} expired: {e['reason']}")
            elif e["stage"] == "lease" and e["state"] != "claimed":
                self.note(f"{self.label(e['job_id'])} {e['state']} {detail or ''}".rstrip())
            elif e["stage"] != "lease":
                self.note(
                    f"{self.label(e['job_id'])} item {e['item_id'][:8]} {e['stage']} started "
                    f"again (attempt {e['attempt']}): its message was redelivered"
                )

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


def _sql(conn, query: str, **params):  # noqa: ANN001, ANN202
    from sqlalchemy import text

    return conn.execute(text(query), params)


# When to kill each worker: a query that finds it holding work in flight (None: not yet).
IN_FLIGHT: dict[str, Callable] = {
    "synth-worker": lambda c: (
        _sql(
            c, "SELECT item_id FROM job_events WHERE stage = 'media' AND state = 'started' LIMIT 1"
        ).scalar()
        and "a media task runs"
    ),
    "caption-worker": lambda c: (
        _sql(
            c,
            "SELECT item_id FROM job_events WHERE stage = 'caption' AND state = 'started' LIMIT 1",
        ).scalar()
        and "a caption task runs"
    ),
    "trainer-cpu": lambda c: (
        (
            step := _sql(
                c,
                "SELECT (progress->>'step')::int FROM jobs WHERE kind = 'train' "
                "AND state = 'running' AND (SELECT count(*) FROM checkpoints) >= 1",
            ).scalar()
        )
        and step > CHECKPOINT_EVERY
        and f"training at step {step}, after the checkpoint of step {CHECKPOINT_EVERY}"
    ),
    "evaluator": lambda c: (
        (
            row := _sql(
                c,
                "SELECT j.id, count(*) FILTER (WHERE i.state = 'done') AS done, count(*) AS n "
                "FROM jobs j JOIN job_items i ON i.job_id = j.id "
                "WHERE j.kind = 'eval' AND j.state = 'running' GROUP BY j.id "
                "HAVING count(*) FILTER (WHERE i.state = 'done') BETWEEN 1 AND count(*) - 2",
            ).first()
        )
        and f"eval {row.id[:8]} scored {row.done} of {row.n} datasets"
    ),
    "indexer": lambda c: (
        (
            row := _sql(
                c,
                "SELECT id, progress FROM jobs WHERE kind = 'index' AND state = 'running' "
                "AND (progress->>'points')::int > 0 "
                "AND (progress->>'points')::int < (progress->>'points_total')::int",
            ).first()
        )
        and f"index {row.id[:8]} upserted {row.progress['points']} of "
        f"{row.progress['points_total']} points"
    ),
}


class Chaos:
    """Kills one worker of each kind in ``KILLED`` once, the moment ``IN_FLIGHT`` finds it holding
    work; ``killed``: service → what it held."""

    def __init__(self, engine, state: Path, timeline: Timeline) -> None:  # noqa: ANN001
        self.engine, self.state, self.timeline = engine, state, timeline
        self.killed: dict[str, str] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.wait(0.05) and len(self.killed) < len(KILLED):
            for service in KILLED:
                if service not in self.killed:
                    self._try(service)

    def _try(self, service: str) -> None:
        try:
            with self.engine.connect() as conn:
                why = IN_FLIGHT[service](conn)
        except Exception:  # noqa: BLE001 - a table not made yet, a poll that failed: next one
            return
        worker = probe.command_of(self.state, service) if why else None
        if worker is None:
            return
        pids = probe.kill_tree(worker.pid)
        self.killed[service] = why
        self.timeline.note(f"SIGKILL {service} {worker.pid} ({len(pids)} processes): {why}")

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


def _start_stack(tmp_path: Path, postgres_url: str, rmq, monkeypatch):  # noqa: ANN001, ANN202
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
        "UNIVR_VECTORS__UPSERT_BATCH": "2",  # an index build of several batches
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    for k, v in knobs.items():
        monkeypatch.setenv(k, v)
    db = postgres_url.rsplit("/", 1)[1]
    args = [
        *("--dir", str(state), "--only", SERVICES),
        *("--set", f"POSTGRES_DB={db}", "--set", f"EMBED_MODEL={home / 'models' / 'tiny'}"),
        *("--port", f"rabbitmq={rmq.port}", "--port", f"minio={free_port()}"),
        *("--port", f"qdrant={free_port()}"),
    ]
    log = open(tmp_path / "stack.out", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "shared.stack", *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        start_new_session=True,
    )
    return proc, log, state, home, args


def _univr(cli_env: dict[str, str], cwd: Path):  # noqa: ANN202
    def univr(*a: str, timeout: float = 300) -> str:
        r = subprocess.run(
            [str(Path(sys.executable).parent / "univr"), *a],
            env=cli_env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert r.returncode == 0, f"univr {' '.join(a)}: {r.stdout[-2000:]} {r.stderr[-3000:]}"
        return r.stdout

    return univr


def test_the_loop_through_the_broker_survives_a_killed_worker_of_each_kind(
    postgres_url, tmp_path, monkeypatch
):
    from sqlalchemy import create_engine

    from shared import stack as stack_mod

    if stack_mod.port_open(8080):
        pytest.fail("port 8080 (compose's API port) is taken: stop what serves it")
    rmq = ShortConsumerTimeoutRabbitMQ(consumer_timeout_ms=15_000)
    rmq.start()
    proc, log, state, home, args = _start_stack(tmp_path, postgres_url, rmq, monkeypatch)
    engine = create_engine(postgres_url)
    timeline = chaos = None
    t0, passed, left = time.monotonic(), False, []

    def mark(what: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f} s] {what}", flush=True)

    try:
        _wait("GET /healthz", lambda: _healthy(proc, tmp_path), timeout=300)
        mark("stack up: /healthz answers")
        # the CLI as a user of the stack runs it: the same environment as the API service
        cli_env = _cli_env(args, stack_mod.Stack(ROOT / "compose.yaml", state, {}, {}))
        univr = _univr(cli_env, tmp_path)
        timeline = Timeline(engine)
        chaos = Chaos(engine, state, timeline)
        synth_job = _synthesise(univr, tmp_path, cli_env, engine)
        mark("synthesis job completed")
        train_job, config = _train(univr, tmp_path, home, engine, cli_env)
        mark("train job completed; its duplicate refused; same weights as the reference run")
        rows = _wait("evaluations and promotions of both checkpoints", _settled(engine), 400)
        mark("evaluations and promotions done")
        chaos.close()
        timeline.close()
        print("\njob timeline:\n" + "\n".join(timeline.lines))
        print("kills:", json.dumps(chaos.killed, indent=1))
        assert set(chaos.killed) == set(KILLED), f"never caught in flight: {chaos.killed}"
        _nothing_lost_nothing_twice(engine, synth_job, train_job, rows, state)
        _search(univr, engine, rows)
        mark("search over HTTP answered by the promoted version")
        passed = True
    finally:
        for part in (chaos, timeline):
            if part is not None:
                part.close()
        left = _ctrl_c(proc)
        log.close()
        print(
            "stack output (tail):\n" + (tmp_path / "stack.out").read_text(errors="replace")[-3000:]
        )
        rmq.close()
        engine.dispose()
    assert passed and not left, f"processes left behind after Ctrl-C: {left}"


def _synthesise(univr, tmp_path: Path, cli_env: dict[str, str], engine) -> str:  # noqa: ANN001
    from shared.world import generate

    generate(tmp_path / "raw", 8, seed=5, workers=1)
    services_home = Path(cli_env["UNIVR_HOME"])  # the services' home (compose: a volume)
    univr(
        *("uvrb", "mini", "--out", str(services_home / "uvrb-mini")),
        *("--seed", "100005", "--n", "6", "--long-n", "3"),
    )
    job = json.loads(univr("synth", "submit", str(tmp_path / "raw" / "manifest.jsonl"), "--json"))[
        "job"
    ]
    _wait("the synthesis job", lambda: _state(engine, job) in ("completed", "failed"), 300)
    assert _state(engine, job) == "completed"
    return job


def _state(engine, job_id: str) -> str | None:  # noqa: ANN001
    with engine.connect() as conn:
        return _sql(conn, "SELECT state FROM jobs WHERE id = :i", i=job_id).scalar()


def _train(univr, tmp_path: Path, home: Path, engine, cli_env):  # noqa: ANN001, ANN202
    """Submit the run, and the same config uninterrupted beside it; the killed run ends with its
    weights; a duplicate delivery of its message is refused."""
    from safetensors.torch import load_file

    snap = json.loads(univr("data", "snapshot", "--name", "e2e", "--json"))
    assert snap["counts"], snap
    config = {
        "snapshot": snap["id"],
        "model": str(home / "models" / "tiny"),
        **{"steps": STEPS, "batch_size": 4, "seed": 3, "preset": "tiny", "sampler": "uniform"},
        "overrides": {"checkpoint_every": CHECKPOINT_EVERY},
    }
    (tmp_path / "train.yaml").write_text(
        yaml.safe_dump({**config, "out": str(tmp_path / "train-out")})
    )
    job = json.loads(univr("train", "submit", "--config", str(tmp_path / "train.yaml"), "--json"))[
        "job"
    ]
    (tmp_path / "ref.yaml").write_text(
        yaml.safe_dump({**config, "out": str(tmp_path / "ref-out"), "run_id": "uninterrupted"})
    )
    ref = subprocess.Popen(
        [str(Path(sys.executable).parent / "univr"), "train", "run"]
        + ["--config", str(tmp_path / "ref.yaml")],
        env=cli_env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    done = ("completed", "failed", "cancelled")
    _wait("the train job", lambda: _state(engine, job) in done, timeout=400)
    assert _state(engine, job) == "completed"
    refused = _lease_events(engine, job).count("refused")  # copies of a re-send, if any
    univr("train", "submit", "--config", str(tmp_path / "train.yaml"))  # delivered again
    _wait(
        "the refused duplicate",
        lambda: _lease_events(engine, job).count("refused") > refused,
        60,
    )
    shown = json.loads(univr("job", "show", job, "--json"))
    names = [e["event"] for e in shown["timeline"]]
    # the expired lease's message is sent again once per lease period until a worker claims it:
    # a takeover slow to start (a loaded machine) finds it expired twice, and refuses the copy
    takeover = names.index("takeover")
    assert names[0] == "claimed" and takeover >= 2, names
    assert set(names[1:takeover]) == {"expired"} and names.count("completed") == 1, names
    resumed = [e for e in shown["timeline"] if e["event"] == "resumed"]
    assert resumed and resumed[-1]["step"] == CHECKPOINT_EVERY
    assert shown["attempts"] == 2  # the takeover's claim; the duplicate was refused, not run
    assert ref.wait(timeout=400) == 0
    adapter = Path("adapter", "adapter_model.safetensors")
    final = load_file(str(tmp_path / "train-out" / adapter))
    reference = load_file(str(tmp_path / "ref-out" / adapter))
    assert final.keys() == reference.keys()
    diff = max(float((final[k] - reference[k]).abs().max()) for k in final)
    print(f"final weights vs the uninterrupted run: max |diff| = {diff:.2e}")
    assert diff <= 1e-5
    return job, config


def _lease_events(engine, job_id: str) -> list[str]:  # noqa: ANN001
    with engine.connect() as conn:
        return list(
            _sql(
                conn,
                "SELECT state FROM job_events WHERE job_id = :i AND stage = 'lease' ORDER BY id",
                i=job_id,
            ).scalars()
        )


def _settled(engine):  # noqa: ANN001, ANN202
    """Both checkpoints evaluated and their promotions run, nothing left running."""

    def check():  # noqa: ANN202
        with engine.connect() as conn:
            rows = _sql(
                conn,
                "SELECT id, kind, state, attempts, progress, result FROM jobs "
                "WHERE kind IN ('eval', 'index')",
            ).all()
        kinds = [r.kind for r in rows if r.state not in ("pending", "running")]
        return rows if kinds.count("eval") >= 2 and kinds.count("index") >= 2 else None

    return check


def _nothing_lost_nothing_twice(engine, synth_job: str, train_job: str, rows, state: Path) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        items = dict(
            _sql(
                conn,
                "SELECT state, count(*) FROM job_items WHERE job_id = :j GROUP BY state",
                j=synth_job,
            ).all()
        )
        twice = _sql(
            conn,
            # a stage's end (its attempt) per item and stage, and the item's own end (attempt 0)
            "SELECT item_id, stage, attempt > 0, count(*) FROM job_events WHERE job_id = :j "
            "AND state = 'done' GROUP BY item_id, stage, attempt > 0 HAVING count(*) > 1",
            j=synth_job,
        ).all()
        again = _sql(
            conn,
            "SELECT stage, count(*) FROM job_events WHERE job_id = :j AND state = 'started' "
            "AND attempt > 1 GROUP BY stage",
            j=synth_job,
        ).all()
    print(f"synthesis items: {items}; stages started again after a kill: {dict(again)}")
    assert items.get("done") and not items.get("failed") and not twice, (items, twice)
    print("eval/index jobs:", [(r.kind, r.state, r.attempts, r.progress) for r in rows])
    assert all(r.state == "completed" for r in rows)
    evals = [r for r in rows if r.kind == "eval" and r.attempts == 2]
    assert len(evals) == 1, "the killed evaluation was taken over once"
    resumed = evals[0].progress["resumed"]
    assert resumed["skipped"] and resumed["dataset"] not in resumed["skipped"]
    with engine.connect() as conn:
        scored = dict(
            _sql(
                conn,
                "SELECT item_key, attempts FROM job_items WHERE job_id = :j AND state = 'done'",
                j=evals[0].id,
            ).all()
        )
    assert len(scored) == evals[0].result["datasets"] and all(
        scored[d] == 1 for d in resumed["skipped"]
    ), scored  # every dataset scored, the skipped ones once
    index = [r for r in rows if r.kind == "index" and r.attempts == 2]
    assert len(index) == 1, "the killed index build was taken over once"
    res, done = index[0].progress.get("resumed"), index[0].result
    print("the killed index build's takeover:", res, done)
    # each build's collection and what its name hashes (base, adapter, recipe): were a takeover
    # to build another collection than its first attempt, these lines say which part changed
    builds = (state / "indexer.log").read_text(errors="replace").splitlines()
    print("index builds:\n" + "\n".join(line for line in builds if "index build into" in line))
    if res is not None:  # the takeover embedded only the points after the last upserted batch
        assert res["points"] > 0 and res["points"] + done["embedded"] == done["points"], (res, done)
    elif not done["built"]:  # the other checkpoint went live first and scored higher: the gate
        assert not done["promoted"] and done["reason"], done  # refused before any embedding
    else:  # the kill landed after the version was marked ready: nothing was left to embed
        assert done["reused"] and done["embedded"] == 0, done
    assert any((r.result or {}).get("promoted") for r in rows)


def _search(univr, engine, rows) -> None:  # noqa: ANN001
    import httpx

    key = json.loads(univr("apikey", "create", "--name", "e2e", "--json"))["key"]
    r = httpx.post(
        f"{API}/v1/search",
        json={"text": "a red circle moving left", "top_k": 3},
        headers={"Authorization": f"Bearer {key}"},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    print("search:", json.dumps(body)[:400])
    assert body["results"] and all(hit["clip_id"] for hit in body["results"])
    # the live version answering is one this run's checkpoints were built into and promoted
    with engine.connect() as conn:
        live = _sql(
            conn, "SELECT id, adapter, eval_run_id FROM index_versions WHERE state = 'live'"
        ).one()
    promoted = [(r.result or {}).get("live") for r in rows if (r.result or {}).get("promoted")]
    assert live.id in promoted and live.eval_run_id
    assert httpx.post(f"{API}/v1/search", json={"text": "x"}, timeout=30).status_code == 401


def _ctrl_c(proc: subprocess.Popen) -> list[int]:
    """Ctrl-C to the stack: every process it started stops; returns those left behind."""
    tree = probe.tree(proc.pid) if proc.poll() is None else []
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    time.sleep(1)
    left = probe.alive(tree)
    print(f"Ctrl-C: {len(tree)} processes of the stack, {len(left)} left behind {left}")
    return left


def _healthy(proc: subprocess.Popen, tmp_path: Path) -> bool:
    if proc.poll() is not None:
        raise AssertionError(
            "the stack exited: " + (tmp_path / "stack.out").read_text(errors="replace")[-4000:]
        )
    return probe.healthy()


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
