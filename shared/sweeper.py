"""The lease sweeper of long-job workers: a job whose worker died keeps a lease that expires;
``sweep`` re-sends that job's message, so a worker of its kind claims it and the run resumes
(``shared.supervise.run_leased``). Long-job workers run it every ``jobs.sweep_s``
(``start_sweeper``, started by ``shared.queue`` once a worker is ready)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from shared.config import get_settings
from shared.db import lease

log = logging.getLogger(__name__)


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
