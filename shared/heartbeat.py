"""The heartbeat of a supervised run (``shared.supervise``): renew the Job row's lease every
``jobs.heartbeat_s`` while the run lasts. A renewal refused means the job was cancelled
(``univr job cancel``) or taken over, and the run is stopped: a child process gets SIGTERM, then
SIGKILL after ``jobs.cancel_grace_s``; an in-process run raises ``lease.JobStopped`` at its next
progress report. A renewal that fails (the database is away) is logged and tried at the next beat.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
from collections.abc import Callable

from shared.db import lease
from shared.db.models import JobState

log = logging.getLogger(__name__)


def renewal(job_id: str, owner: str, lease_s: float) -> str | None:
    """One beat: None while the lease is still ours (or the database is away: try the next beat),
    else why the run must stop: ``cancelled``, or ``lost`` (the lease went to another worker)."""
    try:
        held = lease.renew(job_id, owner, lease_s=lease_s)
    except Exception:  # noqa: BLE001 - the database is away: keep running, try next beat
        log.warning("job %s: heartbeat failed", job_id, exc_info=True)
        return None
    if held:
        return None
    return "cancelled" if lease.state_of(job_id) == JobState.cancelled else "lost"


def watch_child(
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
        why = renewal(job_id, owner, lease_s)
        if why:
            log.warning("job %s: %s; stopping its run", job_id, why)
            stop_child(proc, grace_s)
            return why


def stop_child(proc: subprocess.Popen, grace_s: float) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)  # torchrun forwards it to its workers
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def beat_in_thread(
    job_id: str, owner: str, lease_s: float, heartbeat_s: float, stopped: list[str]
) -> Callable[[], None]:
    """For an in-process run: renew in a daemon thread; when a renewal is refused, append why to
    ``stopped`` and stop the run (``lease.stop_current``). Returns the call that ends the beat."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(heartbeat_s):
            why = renewal(job_id, owner, lease_s)
            if why:
                stopped.append(why)
                lease.stop_current()  # the run raises JobStopped at its next progress report
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{job_id}", daemon=True)
    thread.start()

    def end() -> None:
        done.set()
        thread.join()

    return end
