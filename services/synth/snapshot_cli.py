"""`univr data`: dataset snapshots for training, and external datasets imported as pairs."""

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
    mix: list[str] = typer.Option(
        [],
        help="NAME=WEIGHT (repeatable): the datasets to mix ('uvrd': the synthesized pairs) and "
        "the fraction (0, 1] of each one's pairs kept; default: every pair.",
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Freeze the current pairs into a snapshot in the object store (Parquet shards + manifest)."""
    from services.synth.mix import parse_mix
    from services.synth.snapshot import create_snapshot

    try:
        manifest = create_snapshot(
            name,
            [t for t in tasks.split(",") if t] or None,
            holdout_fraction=holdout,
            mix=parse_mix(mix) or None,
        )
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    typer.echo(
        json.dumps(manifest) if json_out else f"snapshot {manifest['id']}: {manifest['counts']}"
    )


@app.command("import")
def import_cmd(
    name: str = typer.Argument(..., help="The dataset's name (a preset's name uses its fields)."),
    path: str = typer.Argument(..., help="A file or folder of the dataset."),
    fmt: str = typer.Option(None, "--format", help="parquet, jsonl, webdataset or hf."),
    task: str = typer.Option(None, help="Task type: T2T, T2I, T2V, I2V, V2V, ..."),
    query_col: str = typer.Option(None, help="Field of the query (dotted path)."),
    target_col: str = typer.Option(None, help="Field of the target (dotted path)."),
    negatives_col: str = typer.Option(None, help="Field of hard-negative targets."),
    preset: str = typer.Option(None, help="A named preset (SPEC Table 6) to start from."),
    hard_negatives: int = typer.Option(None, help="Hard negatives per pair in training (Neg)."),
    batch_size: int = typer.Option(None, help="The dataset's batch size in training (BS)."),
    limit: int = typer.Option(0, help="Import at most this many pairs (0: all)."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Import an external dataset as pairs of its task type, tagged with its name."""
    from services.synth.importer.run import import_dataset, resolve

    try:
        spec = resolve(
            name,
            preset,
            path=path,
            format=fmt,
            task=task,
            query=query_col,
            target=target_col,
            negatives=negatives_col,
            hard_negatives=hard_negatives,
            batch_size=batch_size,
            limit=limit,
        )
        info = import_dataset(spec)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    typer.echo(
        json.dumps(info)
        if json_out
        else f"{name}: {info['pairs']} {info['task']} pairs; skipped {info['skipped']}"
    )


@app.command("list")
def list_cmd(
    json_out: bool = typer.Option(False, "--json", help="Print the list as JSON."),
) -> None:
    """The snapshots in the database."""
    from services.synth.snapshot import list_snapshots
    from shared.output import show

    show(list_snapshots(), json_out=json_out, indent=1, title="snapshots")
