"""How a command prints its result: a human table (or a few lines) by default, one JSON document
on stdout with ``--json`` (what scripts parse). Every result-printing command takes
``json_out: bool = json_option()`` and ends with ``show(result, json_out=json_out, ...)``; a value
that is missing prints as ``MISSING`` in human output (never as 0) and as ``null`` in JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import typer

MISSING = "—"


def json_option(help: str = "Print the result as JSON (one document on stdout).") -> Any:  # noqa: A002
    """The ``--json`` option of every result-printing command (tests/unit/shared/test_json_flag)."""
    return typer.Option(False, "--json", help=help)


def cell(value: Any) -> str:
    """One value as a table cell: ``MISSING`` for None, 3 decimals for a float, lists joined."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {cell(v)}" for k, v in value.items()) or MISSING
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value) or MISSING
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str | None = None) -> None:
    """Print ``rows`` as a table of ``columns`` (a key missing from a row prints as MISSING)."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # piped or captured: no 80-column default that wraps every cell
        console.width = max(console.width, 200)
    t = Table(*columns, title=title)
    for row in rows:
        t.add_row(*(cell(row.get(c)) for c in columns))
    console.print(t)


def fields(result: dict[str, Any], title: str | None = None) -> None:
    """Print a flat result as ``key  value`` lines (nested values summarised by ``cell``)."""
    if title:
        typer.echo(title)
    width = max((len(str(k)) for k in result), default=0)
    for k, v in result.items():
        typer.echo(f"  {str(k).ljust(width)}  {cell(v)}")


def show(
    result: Any,
    *,
    json_out: bool,
    human: Callable[[Any], None] | None = None,
    columns: Sequence[str] | None = None,
    title: str | None = None,
    indent: int | None = None,
) -> None:
    """Print ``result``: JSON with ``json_out``; otherwise ``human(result)`` if given, a table of
    ``columns`` for a list of rows, ``key  value`` lines for a dict, else its text."""
    if json_out:
        typer.echo(json.dumps(result, indent=indent, default=str))
    elif human is not None:
        human(result)
    elif isinstance(result, list):
        if not result:
            typer.echo(f"{title + ': ' if title else ''}none")
            return
        cols = list(columns or result[0].keys())
        table(result, cols, title=title)
    elif isinstance(result, dict):
        fields(result, title=title)
    else:
        typer.echo(cell(result))


__all__ = ["MISSING", "cell", "fields", "json_option", "show", "table"]
