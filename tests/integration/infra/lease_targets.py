"""Targets the lease tests run as supervised jobs (in a child process or in-process)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from shared.db.lease import report_progress


def counting(job_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """Counts to ``params["n"]``, one step per ``params["every_s"]``, reporting each step; writes
    its pid first (so a test can see the process go away)."""
    if params.get("pid_file"):
        Path(params["pid_file"]).write_text(str(os.getpid()))
    for i in range(params["n"]):
        time.sleep(params["every_s"])
        report_progress(step=i + 1)
    if params.get("fail"):
        raise ValueError(params["fail"])
    return {"counted": params["n"], "pid": os.getpid()}
