"""Docs that run: every ``univr ...`` command README.md shows parses with the installed CLI (the
command exists, and so does each option, with a value of the right type), and README's Python
version claim matches ``requires-python``."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import typer

from shared.cli import build_app

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "README.md"


def readme_commands() -> list[str]:
    """``univr`` lines of README's code blocks and inline code, comments and prompts stripped."""
    text = README.read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = re.sub(r"^\s*\$\s*", "", line.strip())
            if line.startswith("univr "):
                found.append(line.split("  #")[0].split(" # ")[0].strip())
    for inline in re.findall(r"`(univr [^`]+)`", text):
        found.append(inline.strip())
    return sorted(set(found))


# Typer carries its own copy of click: take the classes from it, not from an installed click.
UsageError = typer.BadParameter.__mro__[1]


def _resolve(args: list[str]):  # noqa: ANN202
    cmd = typer.main.get_command(build_app())
    path = ["univr"]
    while hasattr(cmd, "get_command") and args and not args[0].startswith("-"):
        sub = cmd.get_command(cmd.context_class(cmd), args[0])
        assert sub is not None, f"no command {' '.join([*path, args[0]])!r}"
        path.append(args.pop(0))
        cmd = sub
    return cmd, path, args


@pytest.mark.parametrize("line", readme_commands())
def test_readme_command_parses(line: str) -> None:
    args = shlex.split(line)[1:]
    cmd, path, rest = _resolve(args)
    if hasattr(cmd, "get_command") and not rest:
        return  # a group named in prose (`univr synth`)
    if rest in (["--help"], ["-h"]):
        return
    try:
        cmd.make_context(" ".join(path), list(rest))
    except UsageError as exc:
        pytest.fail(f"README: {line!r} does not parse: {exc.format_message()}")


def test_readme_finds_the_commands() -> None:
    assert len(readme_commands()) >= 10


def test_python_version_claim_matches_requires_python() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    minimum = re.match(r">=\s*(\d+\.\d+)", project["requires-python"]).group(1)
    claims = set(re.findall(r"Python ≥ (\d+\.\d+)", README.read_text(encoding="utf-8")))
    assert claims == {minimum}, f"README claims Python ≥ {claims}, pyproject requires {minimum}"
