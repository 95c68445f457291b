"""`univr uvrb`: build UVRB-mini, check a UVRB copy."""

from __future__ import annotations

from pathlib import Path

import typer

from shared.output import json_option, show

app = typer.Typer(
    help="The UVRB benchmark files: build UVRB-mini, check a copy.", no_args_is_help=True
)


@app.command("mini")
def mini_cmd(
    out: Path = typer.Option(..., help="Folder to write the benchmark to."),
    seed: int = typer.Option(100_000, help="Seed (keep it apart from training corpora)."),
    n: int = typer.Option(32, help="Corpus size of each dataset."),
    long_n: int = typer.Option(8, help="Long videos in the long-context datasets."),
    json_out: bool = json_option(),
) -> None:
    """Build UVRB-mini: all 16 datasets in the Hub layout, from the procedural world."""
    from services.evaluator.mini import build_mini

    show(build_mini(out, seed, n, long_n), json_out=json_out, title=f"UVRB-mini in {out}")


@app.command("check")
def check_cmd(
    root: Path = typer.Argument(..., help="A UVRB copy (extracted)."),
    datasets: str = typer.Option("", help="Comma-separated short names (default: all)."),
    json_out: bool = json_option(),
) -> None:
    """Report what is present and valid; exit 1 if any dataset is broken."""
    from services.evaluator.layout import check

    report = check(root, [d for d in datasets.split(",") if d] or None)
    rows = [{"dataset": name, **r} for name, r in report.items()]
    columns = ("dataset", "ok", "queries", "corpus", "judged", "candidate_sets", "error")
    show(
        report,
        json_out=json_out,
        indent=1,
        human=lambda r: show(rows, json_out=False, columns=columns),
    )
    if not all(r["ok"] for r in report.values()):
        raise typer.Exit(1)
