"""``univr train run`` on a terminal (a pseudo-terminal here) draws a rich progress bar with the
step, loss, lr, σ, task, samples/s and time remaining, and no piped-style log records."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys

from .world_snapshot import build_world_snapshot


def test_on_a_terminal_the_run_shows_a_progress_bar(tmp_path, tiny_model_dir, univr_home):
    snapshot = build_world_snapshot(4, seed=2, tasks=("T2V",), name="tty")
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIVR_")}
    env.update(
        UNIVR_HOME=str(univr_home),
        HF_HUB_OFFLINE="1",
        UNIVR_TRAIN__REPORT_TO="none",
        UNIVR_TRAIN__HELDOUT_FRACTION="0",
        COLUMNS="160",
        TERM="xterm",
    )
    leader, follower = pty.openpty()
    cmd = [
        sys.executable,
        "-c",
        "from shared.cli import main; main()",
        "train",
        "run",
        "--snapshot",
        snapshot,
        "--model",
        str(tiny_model_dir),
        "--preset",
        "tiny",
        "--steps",
        "3",
        "--batch-size",
        "2",
        "--out",
        str(tmp_path / "run"),
    ]
    proc = subprocess.Popen(
        cmd, env=env, stdin=follower, stdout=follower, stderr=follower, close_fds=True
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process exited
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=600) == 0, b"".join(chunks)[-3000:].decode(errors="replace")
    screen = b"".join(chunks).decode(errors="replace")
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    assert "\x1b[" in screen  # drawn with terminal control codes
    bar = r"3/3 loss [\d.]+ lr \S+ σ [\d.]+ task T2V [\d.]+ samples/s"
    assert re.search(bar, plain), plain[-2000:]
    assert re.search(r"\d+:\d\d:\d\d", plain)  # time remaining
    assert "train step " not in plain  # no log records on a terminal
