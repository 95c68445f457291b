"""Every `univr` command that prints a result takes ``--json`` (human output by default): the test
walks the whole command tree, so a new command without it fails here."""

from __future__ import annotations

import json

import click
import typer
from typer.testing import CliRunner

from shared.cli import build_app

# Commands that print no result: long-running servers and workers (they log until stopped).
NO_RESULT = {
    "api serve",  # the HTTP API server
    "synth worker",  # Celery workers: consume queues until stopped
    "train worker",
    "eval worker",
    "index worker",
}


def _commands() -> dict[str, click.Command]:
    root = typer.main.get_command(build_app())
    ctx = click.Context(root)
    out: dict[str, click.Command] = {}

    def walk(cmd: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(cmd, click.Group) or hasattr(cmd, "list_commands"):
            for name in cmd.list_commands(ctx):  # type: ignore[attr-defined]
                walk(cmd.get_command(ctx, name), (*path, name))  # type: ignore[attr-defined]
        else:
            out[" ".join(path)] = cmd

    walk(root, ())
    return out


def test_every_result_printing_command_has_json():
    commands = _commands()
    assert len(commands) > 30 and "synth jobs" in commands  # the walk reached every group
    missing = [
        name
        for name, cmd in sorted(commands.items())
        if name not in NO_RESULT
        and "--json" not in [o for p in cmd.params for o in getattr(p, "opts", [])]
    ]
    assert not missing, f"commands that print a result without --json: {missing}"
    assert NO_RESULT <= set(commands), "the exception list names a command that is gone"


def test_human_by_default_json_with_the_flag():
    runner = CliRunner()
    human = runner.invoke(build_app(), ["config", "show"])
    assert human.exit_code == 0, human.output
    assert "train.lr = " in human.output and not human.output.lstrip().startswith("{")
    as_json = runner.invoke(build_app(), ["config", "show", "--json"])
    assert json.loads(as_json.output)["train"]["lr"] > 0


def test_missing_values_print_as_a_dash(tmp_path):
    scores = tmp_path / "scores.json"
    scores.write_text(json.dumps({"MSRVTT": 0.5, "DiDeMo": 0.25, "CRB-G": 0.75}))
    runner = CliRunner()
    human = runner.invoke(build_app(), ["eval", "aggregate", str(scores)])
    assert human.exit_code == 0, human.output
    lines = {ln.split()[0]: ln.split()[1] for ln in human.output.splitlines() if ln.strip()}
    assert lines["CG"] == "0.500" and lines["AVG_A"] == "—" and lines["TXT"] == "—"
    as_json = json.loads(
        runner.invoke(build_app(), ["eval", "aggregate", str(scores), "--json"]).output
    )
    assert as_json["CG"] == 0.5 and as_json["AVG_A"] is None
