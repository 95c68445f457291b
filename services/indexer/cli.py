"""`univr index`: build a collection for a model version, promote it, list versions, serve jobs."""

from __future__ import annotations

import json

import typer

app = typer.Typer(help="Qdrant indexing and promotion of model versions.", no_args_is_help=True)


@app.command("build")
def build_cmd(
    model: str = typer.Option("", help="Checkpoint path or hub id (default: configured)."),
    adapter: str | None = typer.Option(None, help="LoRA adapter folder."),
    version: str | None = typer.Option(
        None, help="Collection name (default: from the model id and the scope)."
    ),
    source: str | None = typer.Option(None, help="Only the clips of this source (id or URI)."),
    dataset: str | None = typer.Option(
        None, help="Only the clips of this dataset (snapshot name or id)."
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Embed the kept clips and their videos into the collection of this model and scope. Re-running
    the same build resumes it if it was interrupted, or reuses it if it is complete."""
    from services.indexer.build import build_index

    try:
        result = build_index(model or None, adapter, version, source=source, dataset=dataset)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(
        json.dumps(result)
        if json_out
        else f"built {result['version']}: {result['points']} points "
        f"({result['embedded']} embedded now)"
    )


@app.command("promote")
def promote_cmd(
    version: str = typer.Argument(...),
    avg_a: float | None = typer.Option(None, help="UVRB AVG-A of this version (the gate)."),
    force: bool = typer.Option(
        False,
        help=(
            "Promote even without a score or"
            " if not better than the live version (recorded as forced)."
        ),
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Verify VERSION and switch the live alias to it atomically. While another version is live,
    VERSION needs an AVG-A better than the live one's (or --force)."""
    from services.indexer.promote import PromotionRefused, promote

    try:
        result = promote(version, avg_a, force)
    except PromotionRefused as exc:
        typer.echo(
            json.dumps({"promoted": False, "reason": str(exc)})
            if json_out
            else f"not promoted: {exc}"
        )
        raise typer.Exit(1) from exc
    forced = f" (forced over: {result['overridden']})" if result["forced"] else ""
    typer.echo(
        json.dumps({"promoted": True, **result}) if json_out else f"live: {result['live']}{forced}"
    )


@app.command("list")
def list_cmd(
    json_out: bool = typer.Option(False, "--json", help="Print the list as JSON."),
) -> None:
    """Index versions and their states."""
    from sqlalchemy import select

    from shared.db import init_db, session_scope
    from shared.db.models import IndexVersion

    init_db()
    with session_scope() as s:
        rows = [
            {
                "version": r.id,
                "state": r.state,
                "points": r.points,
                "avg_a": r.avg_a,
                "model": r.model,
                "adapter": r.adapter,
            }
            for r in s.scalars(select(IndexVersion).order_by(IndexVersion.created_at))
        ]
    from shared.output import show

    show(rows, json_out=json_out, indent=1, title="index versions")


@app.command("worker")
def worker_cmd() -> None:
    """Consume index jobs and eval.completed events from the index queue."""
    import services.indexer.tasks  # noqa: F401
    from shared.queue import QUEUE_INDEX, run_worker

    run_worker([QUEUE_INDEX], concurrency=1)
