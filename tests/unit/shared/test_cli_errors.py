"""Expected failures of the ``univr`` command are one clear line on stderr and exit code 2; a
traceback only with ``--debug``. ``univr --version`` prints the installed version."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import pytest


def univr(
    *args: str, env_extra: dict[str, str] | None = None, home=None
) -> subprocess.CompletedProcess:  # noqa: ANN001
    import os

    env = {**os.environ, **(env_extra or {})}
    if home is not None:
        env["UNIVR_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-c", "from shared.cli import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("args", "env", "reason"),
    [
        (
            ["synth", "run", "/nonexistent-univr-source"],
            {},
            "no such path: '/nonexistent-univr-source'",
        ),
        (
            ["train", "run", "--snapshot", "nope"],
            {},
            "not found in the object store: snapshots/nope/manifest.json",
        ),
        (["config", "show"], {"UNIVR_TRAIN__LR": "abc"}, "bad configuration: train.lr='abc'"),
    ],
)
def test_expected_failures_are_one_line_and_exit_2(args, env, reason, univr_home):
    proc = univr(*args, env_extra=env, home=univr_home)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith(("univr: error: ", "error: ")) and reason in lines[-1], proc.stderr
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr

    debug = univr("--debug", *args, env_extra=env, home=univr_home)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_version(univr_home):
    proc = univr("--version", home=univr_home)
    assert proc.returncode == 0 and proc.stdout.strip() == f"univr {version('univr')}"
