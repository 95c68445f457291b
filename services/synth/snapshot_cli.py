"""`univr data`: dataset snapshots for training."""

from __future__ import annotations

import json

import typer

app = typer.Typer(
    help="Dataset snapshots: immutable manifests of pairs for the trainer.", no_args_is_help=True
)


@app.command("snapshot")
def snapshot_cmd(
    name: str = typer.Option("snapshot", help="A human name for the snapshot."),
    tasks: str = typer.Option("", help="Comma-separated task types to include (default: all)."),
    holdout: float = typer.Option(
        0.0,
        help="Fraction of source videos whose pairs are held "
        "out (split 'heldout', for the trainer's probe).",
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Freeze the current pairs into a snapshot in the object store (Parquet shards + manifest)."""
    from services.synth.snapshot import create_snapshot

    try:
        manifest = create_snapshot(
            name, [t for t in tasks.split(",") if t] or None, holdout_fraction=holdout
        )
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    typer.echo(
        json.dumps(manifest) if json_out else f"snapshot {manifest['id']}: {manifest['counts']}"
    )


@app.command("list")
def list_cmd() -> None:
    """The snapshots in the database."""
    from services.synth.snapshot import list_snapshots

    typer.echo(json.dumps(list_snapshots(), indent=1))
