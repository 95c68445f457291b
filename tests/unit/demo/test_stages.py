"""The demo's stage runner: a demo that is killed (a test's timeout, a closed terminal) leaves no
stage process running. Found when the demo e2e timed out under load: its `univr train run` went on
for minutes as an orphan, slowing every test after it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie has exited already
        return fh.read().split()[2] != "Z"


def test_a_killed_demo_takes_its_running_stage_with_it(tmp_path: Path):
    pidfile = tmp_path / "stage.pid"
    stage = tmp_path / "stage.sh"  # stands in for the interpreter a stage runs `univr` with
    stage.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 300\n")
    stage.chmod(0o755)
    demo = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
                import sys
                from pathlib import Path
                from services.demo.stages import StageRunner
                sys.executable = {str(stage)!r}
                StageRunner(Path({str(tmp_path / "out")!r}), {{}}).univr("train", ["train"])
            """),
        ],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
    )
    try:
        for _ in range(600):  # the stage started (up to a minute on a loaded machine)
            if pidfile.exists() and pidfile.read_text().strip():
                break
            assert demo.poll() is None, "the demo exited before its stage started"
            time.sleep(0.1)
        pid = int(pidfile.read_text())
        assert _alive(pid)
        demo.send_signal(signal.SIGKILL)
        demo.wait()
        for _ in range(100):
            if not _alive(pid):
                break
            time.sleep(0.1)
        assert not _alive(pid), "the stage outlived the killed demo"
    finally:
        if demo.poll() is None:
            demo.kill()
        if pidfile.exists() and pidfile.read_text().strip():
            try:
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass
