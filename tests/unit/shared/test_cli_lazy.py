"""`univr GROUP …` imports only the group it names: a command that needs no model does not pay
for importing torch, transformers and every service (seconds per command, in every script and
test that calls the CLI); help still lists every group."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = (
    "import sys, json\n"
    "from shared.cli import main\n"
    "sys.argv = ['univr', *json.loads(sys.argv[1])]\n"
    "try:\n"
    "    main()\n"
    "except SystemExit:\n"
    "    pass\n"
    "heavy = sorted(m for m in ('torch', 'transformers', 'services.trainer.cli', "
    "'services.demo.pipeline') if m in sys.modules)\n"
    "print('HEAVY', json.dumps(heavy))\n"
)


def _run(tmp_path, *args: str) -> tuple[list[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIVR_")}
    env.update(UNIVR_PROFILE="embedded", UNIVR_HOME=str(tmp_path / "home"))
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args))],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = [x for x in out.stdout.splitlines() if x.startswith("HEAVY ")][-1]
    return json.loads(line.split(" ", 1)[1]), out.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("config", "show"),
        ("--debug", "config", "show", "--json"),
        ("apikey", "list"),
        ("synth", "--help"),
    ],
)
def test_a_command_imports_only_its_group(tmp_path, args):
    heavy, stdout = _run(tmp_path, *args)
    assert heavy == [], stdout[-2000:]


def test_help_lists_every_group(tmp_path):
    _, stdout = _run(tmp_path, "--help")
    for group in ("config", "db", "model", "media", "synth", "train", "eval", "index", "demo"):
        assert f" {group} " in stdout, group


def test_the_named_group_runs(tmp_path):
    heavy, stdout = _run(tmp_path, "train", "--help")
    assert "services.trainer.cli" in heavy and "Usage: univr train" in stdout
