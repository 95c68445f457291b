"""Torch threads per process: a process alone keeps torch's default, one of a pool gets its share of
the cores, and ``model.torch_threads`` overrides both."""

from __future__ import annotations

import os
import subprocess
import sys

from shared.config import Settings
from shared.threads import cpu_cores, threads_for


def test_shares_of_the_cores(monkeypatch):
    monkeypatch.setattr("shared.threads.cpu_cores", lambda: 16)
    s = Settings()
    assert threads_for(1, s) is None  # alone: torch's default
    assert threads_for(4, s) == 4 and threads_for(3, s) == 5 and threads_for(64, s) == 1
    s.model.torch_threads = 2
    assert threads_for(1, s) == 2 and threads_for(4, s) == 2


def test_applied_before_and_after_torch_is_imported(univr_home):
    """Before torch loads, only the environment is set (a worker that never uses torch never loads
    it); after, torch's own count changes."""
    code = (
        "import sys; from shared.threads import configure_torch_threads as c; n = c({procs}); "
        "assert 'torch' not in sys.modules; import torch; {touch} print(n, torch.get_num_threads())"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env["UNIVR_HOME"] = str(univr_home)
    before = subprocess.run(
        [sys.executable, "-c", code.format(procs=cpu_cores() * 2, touch="")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert before == ["1", "1"]
    env["UNIVR_MODEL__TORCH_THREADS"] = "3"
    after = subprocess.run(
        [
            sys.executable,
            "-c",
            "import torch; from shared.threads import "
            "configure_torch_threads as c; print(c(), torch.get_num_threads())",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert after == ["3", "3"]
