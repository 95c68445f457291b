"""Long jobs as leased, supervised runs (DESIGN.md: never a Celery task that lasts hours).

A long-job task (train, eval, index queues) is acked on receipt and calls ``run_leased``: claim
the Job row's lease (``shared.db.lease``; a duplicate message is refused there), start the run as
a child process (``python -m shared.supervise TARGET ...``, or under ``torchrun --standalone
--nproc_per_node=N`` for training on N GPUs), and wait on it, renewing the lease every
``jobs.heartbeat_s`` (``shared.heartbeat``). A renewal that fails means the job was cancelled
(``univr job cancel``) or taken over: the child gets SIGTERM, then SIGKILL after
``jobs.cancel_grace_s``. The child dies with its worker (``PR_SET_PDEATHSIG``), so a SIGKILLed
worker leaves no run behind; its lease expires and ``sweep`` (``shared.sweeper``) in another worker
of that kind re-sends the job's message: the new claim resumes the run (training from its last
checkpoint, evaluation past its finished datasets, an index build after its last upserted batch;
each target resumes by itself).

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
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.config import get_settings
from shared.db import lease
from shared.db.jobs import error_text
from shared.db.models import JobState
from shared.heartbeat import beat_in_thread, watch_child

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


def die_with_parent() -> None:
    """In the child, before exec: SIGKILL it when the worker that started it dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: the run outlives a killed worker until its next lease check
        pass


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
    owner = worker_id()
    got = _claim(job_id, params, kind=kind, owner=owner, message=message, nproc=nproc)
    if not got.granted:
        return {"job": job_id, "refused": True, "state": str(got.state), "holder": got.owner}
    run = _in_process if in_process else _child_process
    stopped, outcome = run(target, job_id, params, owner, nproc)
    if stopped is not None:
        lease.log(job_id, stopped, attempt=got.attempts, owner=owner)
        return {"job": job_id, "state": stopped}
    if "error" in outcome:
        return _record_failure(job_id, owner, got.attempts, outcome["error"])
    return _record_completion(job_id, owner, got.attempts, outcome.get("result"), on_done)


def _claim(
    job_id: str,
    params: dict[str, Any],
    *,
    kind: str,
    owner: str,
    message: dict[str, Any],
    nproc: int,
) -> lease.Claim:
    """Take the Job row's lease and put the claim (or the refusal) on the job's timeline."""
    got = lease.claim(
        job_id,
        owner,
        kind=kind,
        lease_s=get_settings().jobs.lease_s,
        params=params,
        message=message,
    )
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
        return got
    event = "claimed" if got.attempts <= 1 else "takeover"
    lease.log(job_id, event, attempt=got.attempts, owner=owner, nproc=nproc)
    return got


def _record_failure(job_id: str, owner: str, attempt: int, error: Any) -> dict[str, Any]:
    """The run failed: end the row with its error; an exception (in-process) is raised again."""
    lease.finish(job_id, owner, JobState.failed, error=error)
    lease.log(job_id, "failed", attempt=attempt, owner=owner, reason=error_text(error))
    if isinstance(error, BaseException):
        raise error
    return {"job": job_id, "state": str(JobState.failed), "error": error}


def _record_completion(
    job_id: str,
    owner: str,
    attempt: int,
    result: Any,
    on_done: Callable[[dict[str, Any]], None] | None,
) -> dict[str, Any]:
    """The run completed: ``on_done`` still under the lease, then the row ends with its result
    (an error in either fails the job and is raised)."""
    result = jsonable(result or {})
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
    lease.log(job_id, "completed", attempt=attempt, owner=owner)
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
            preexec_fn=die_with_parent,
        )
        stopped = watch_child(proc, job_id, owner, cfg.lease_s, cfg.heartbeat_s, cfg.cancel_grace_s)
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
    stopped: list[str] = []
    lease.set_current(job_id, owner)
    end_beat = beat_in_thread(job_id, owner, cfg.lease_s, cfg.heartbeat_s, stopped)
    try:
        return None, {"result": fn(job_id, params)}
    except lease.JobStopped:
        return (stopped or ["cancelled"])[0], {}
    except Exception as exc:  # noqa: BLE001 - recorded by run_leased, then raised
        return (stopped[0] if stopped else None), {"error": exc}
    finally:
        end_beat()
        lease.set_current(None, None)


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
