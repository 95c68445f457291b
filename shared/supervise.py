"""Long jobs as leased, supervised runs (DESIGN.md: never a Celery task that lasts hours).

A long-job task (train, eval, index queues) is acked on receipt and calls ``run_leased``: claim
the Job row's lease (``shared.db.lease``; a duplicate message is refused there), start the run as
a child process (``python -m shared.supervise TARGET ...``, or under ``torchrun --standalone
--nproc_per_node=N`` for training on N GPUs), and wait on it, renewing the lease every
``jobs.heartbeat_s``. A renewal that fails means the job was cancelled (``univr job cancel``) or
taken over: the child gets SIGTERM, then SIGKILL after ``jobs.cancel_grace_s``. The child dies
with its worker (``PR_SET_PDEATHSIG``), so a SIGKILLed worker leaves no run behind; its lease
expires and ``sweep`` in another worker of that kind re-sends the job's message: the new claim
resumes the run (training from its last checkpoint, evaluation past its finished datasets, an
index build after its last upserted batch; each target resumes by itself).

A target is ``"package.module:function"`` called as ``function(job_id, params)`` in the child; it
returns the job's result (a JSON-able dict) or raises (the job fails with that error).
"""

from __future__ import annotations

import ctypes
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.config import get_settings
from shared.db import lease
from shared.db.jobs import error_text
from shared.db.models import JobState

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1


def worker_id() -> str:
    """Who holds a lease: host, process and a nonce (a restarted process is another owner)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def gpu_count() -> int:
    """GPUs this worker was given (CUDA_VISIBLE_DEVICES as compose or the scheduler set it)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - no torch / no driver: no GPU
        return 0


def train_nproc() -> int:
    """Processes for a training run: ``train.nproc`` when set, else one per GPU, else 1."""
    return get_settings().train.nproc or max(gpu_count(), 1)


def jsonable(value: Any) -> Any:
    """A result as strict JSON holds it (PostgreSQL's JSON refuses NaN): non-finite floats →
    None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def task_message(task: Any) -> dict[str, Any]:
    """The message a Celery task was sent with, to send it again on takeover."""
    return {
        "task": task.name,
        "args": list(task.request.args or []),
        "kwargs": dict(task.request.kwargs or {}),
    }


def child_command(
    target: str, job_id: str, params_file: Path, result_file: Path, nproc: int = 1
) -> list[str]:
    tail = ["-m", "shared.supervise", target, job_id, str(params_file), str(result_file)]
    if nproc > 1:  # one node, rendezvous on a free port (two runs on one host don't collide)
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            *tail,
        ]
    return [sys.executable, *tail]


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL it when the worker that started it dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: the run outlives a killed worker until its next lease check
        pass


def _stop(proc: subprocess.Popen, grace_s: float) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)  # torchrun forwards it to its workers
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_leased(
    job_id: str,
    params: dict[str, Any],
    *,
    kind: str,
    target: str,
    message: dict[str, Any],
    nproc: int = 1,
    in_process: bool = False,
    on_done: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Claim the job, run ``target`` supervised, record how it ended; returns what happened
    (``{"job", "state", "result"...}``; ``refused`` when the lease is held or the job has ended).
    ``in_process``: call the target in this process with a heartbeat thread (cancel stops it at
    its next progress report) instead of a child process; its error is raised after it is recorded.
    ``on_done(result)`` runs in the worker after a completed run, still under the lease (emit an
    event); an error there fails the job."""
    cfg = get_settings().jobs
    owner = worker_id()
    got = lease.claim(job_id, owner, kind=kind, lease_s=cfg.lease_s, params=params, message=message)
    if not got.granted:
        log.info("job %s: lease refused (state %s, held by %s)", job_id, got.state, got.owner)
        lease.log(
            job_id,
            "refused",
            attempt=got.attempts,
            owner=owner,
            holder=got.owner,
            job_state=str(got.state),
        )
        return {"job": job_id, "refused": True, "state": str(got.state), "holder": got.owner}
    lease.log(
        job_id,
        "claimed" if got.attempts <= 1 else "takeover",
        attempt=got.attempts,
        owner=owner,
        nproc=nproc,
    )
    run = _in_process if in_process else _child_process
    stopped, outcome = run(target, job_id, params, owner, nproc)
    if stopped is not None:
        lease.log(job_id, stopped, attempt=got.attempts, owner=owner)
        return {"job": job_id, "state": stopped}
    if "error" in outcome:
        lease.finish(job_id, owner, JobState.failed, error=outcome["error"])
        lease.log(
            job_id, "failed", attempt=got.attempts, owner=owner, reason=error_text(outcome["error"])
        )
        if isinstance(outcome["error"], BaseException):
            raise outcome["error"]
        return {"job": job_id, "state": str(JobState.failed), "error": outcome["error"]}
    result = jsonable(outcome.get("result") or {})
    try:
        if on_done:
            on_done(result)
    except Exception as exc:
        lease.finish(job_id, owner, JobState.failed, error=exc)
        raise
    try:
        lease.finish(job_id, owner, JobState.completed, result=result)
    except Exception as exc:  # a result the database refuses fails the job, never loops it
        lease.finish(
            job_id,
            owner,
            JobState.failed,
            error=f"its result could not be stored: {error_text(exc)}",
        )
        raise
    lease.log(job_id, "completed", attempt=got.attempts, owner=owner)
    return {"job": job_id, "state": str(JobState.completed), "result": result}


def _child_process(
    target: str, job_id: str, params: dict[str, Any], owner: str, nproc: int
) -> tuple[str | None, dict[str, Any]]:
    cfg = get_settings().jobs
    with tempfile.TemporaryDirectory(prefix="univr-job-") as tmp:
        params_file, result_file = Path(tmp) / "params.json", Path(tmp) / "result.json"
        params_file.write_text(json.dumps(params))
        env = {**os.environ, "UNIVR_JOB_ID": job_id, "UNIVR_JOB_OWNER": owner}
        proc = subprocess.Popen(
            child_command(target, job_id, params_file, result_file, nproc),
            env=env,
            preexec_fn=_die_with_parent,
        )
        stopped = _supervise(proc, job_id, owner, cfg.lease_s, cfg.heartbeat_s, cfg.cancel_grace_s)
        outcome = json.loads(result_file.read_text()) if result_file.exists() else {}
    if stopped is None and proc.returncode != 0 and "error" not in outcome:
        outcome["error"] = f"the run exited with status {proc.returncode}"
    return stopped, outcome


def _in_process(
    target: str, job_id: str, params: dict[str, Any], owner: str, nproc: int
) -> tuple[str | None, dict[str, Any]]:
    import importlib

    cfg = get_settings().jobs
    module, _, name = target.partition(":")
    fn = getattr(importlib.import_module(module), name)
    done, stopped = threading.Event(), []

    def beat() -> None:
        while not done.wait(cfg.heartbeat_s):
            try:
                held = lease.renew(job_id, owner, lease_s=cfg.lease_s)
            except Exception:  # noqa: BLE001 - the database is away: keep running, try next beat
                log.warning("job %s: heartbeat failed", job_id, exc_info=True)
                continue
            if not held:
                stopped.append(
                    "cancelled" if lease.state_of(job_id) == JobState.cancelled else "lost"
                )
                lease.stop_current()  # the run raises JobStopped at its next progress report
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{job_id}", daemon=True)
    lease.set_current(job_id, owner)
    thread.start()
    try:
        return None, {"result": fn(job_id, params)}
    except lease.JobStopped:
        return (stopped or ["cancelled"])[0], {}
    except Exception as exc:  # noqa: BLE001 - recorded by run_leased, then raised
        return (stopped[0] if stopped else None), {"error": exc}
    finally:
        done.set()
        lease.set_current(None, None)
        thread.join()


def _supervise(
    proc: subprocess.Popen,
    job_id: str,
    owner: str,
    lease_s: float,
    heartbeat_s: float,
    grace_s: float,
) -> str | None:
    """Wait for the child, renewing the lease; None when it exited by itself, else why it was
    stopped (``cancelled`` or ``lost``: the lease went to another worker)."""
    while True:
        try:
            proc.wait(timeout=heartbeat_s)
            return None
        except subprocess.TimeoutExpired:
            pass
        try:
            held = lease.renew(job_id, owner, lease_s=lease_s)
        except Exception:  # noqa: BLE001 - the database is away: keep running, try next beat
            log.warning("job %s: heartbeat failed", job_id, exc_info=True)
            continue
        if not held:
            why = "cancelled" if lease.state_of(job_id) == JobState.cancelled else "lost"
            log.warning("job %s: %s; stopping its run", job_id, why)
            _stop(proc, grace_s)
            return why


def sweep(kinds: tuple[str, ...], send: Callable[[dict[str, Any]], None]) -> list[str]:
    """Re-send the message of every job of ``kinds`` whose lease expired (its worker died); a
    worker of that kind claims it and resumes. One re-send per ``jobs.lease_s`` over all sweepers
    (``lease.take_resend``); were there two, one claim would win. Returns the job ids."""
    sent, every = [], get_settings().jobs.lease_s
    for job_id, message in lease.expired(kinds):
        if not message or not lease.take_resend(job_id, every_s=every):
            continue
        lease.log(job_id, "expired", reason="lease expired; message sent again")
        send(message)
        sent.append(job_id)
    return sent


def start_sweeper(
    kinds: tuple[str, ...], send: Callable[[dict[str, Any]], None], every_s: float | None = None
) -> threading.Event:
    """``sweep`` every ``jobs.sweep_s`` in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    every = every_s or get_settings().jobs.sweep_s

    def loop() -> None:
        while not stop.wait(every):
            try:
                sweep(kinds, send)
            except Exception:  # noqa: BLE001 - the database or broker is away: next round
                log.warning("lease sweep failed", exc_info=True)

    threading.Thread(target=loop, name="lease-sweeper", daemon=True).start()
    return stop


def _child(target: str, job_id: str, params_file: str, result_file: str) -> int:
    """The run itself (every torchrun rank runs it; rank 0 writes the outcome)."""
    import importlib

    from shared.threads import configure_torch_threads

    configure_torch_threads(int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    module, _, name = target.partition(":")
    fn = getattr(importlib.import_module(module), name)
    params = json.loads(Path(params_file).read_text())
    lead = int(os.environ.get("RANK", "0")) == 0
    try:
        result = fn(job_id, params)
    except Exception as exc:  # noqa: BLE001 - the job fails with the error a user reads
        log.exception("job %s failed", job_id)
        if lead:
            Path(result_file).write_text(json.dumps({"error": error_text(exc)}))
        return 1
    if lead:
        Path(result_file).write_text(json.dumps({"result": result}, default=str))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=get_settings().log_level)
    sys.exit(_child(*sys.argv[1:5]))
