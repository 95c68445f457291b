"""`univr eval`: score an embedder on UVRB, aggregate scores, serve eval jobs."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from shared.output import MISSING, json_option, show

app = typer.Typer(help="UVRB evaluation: 16 datasets, 9 abilities.", no_args_is_help=True)


@app.command("run")
def run_cmd(
    uvrb: Path = typer.Option(..., help="A UVRB copy in the Hub layout (or UVRB-mini)."),
    model: str = typer.Option(
        "", help="Checkpoint path or hub id (default: the configured model)."
    ),
    adapter: str | None = typer.Option(None, help="A LoRA adapter folder."),
    datasets: str = typer.Option("", help="Comma-separated dataset short names (default: all 16)."),
    out: Path = typer.Option(Path("uvrb-results.json"), help="Results JSON."),
    report: Path | None = typer.Option(None, help="Also write an HTML report here."),
    fmt: str = typer.Option(
        "univr",
        "--format",
        help="univr (one results JSON) | mteb (also MTEB's results "
        "layout in a folder beside --out).",
    ),
    job: str | None = typer.Option(
        None, help="The id of the Job row this run moves (default: a new job)."
    ),
    json_out: bool = json_option(),
) -> None:
    """Embed queries and corpus of each dataset and score them. The run is a job (shown by the API
    and the dashboard): running, datasets done / total, then completed with its AVG-A and eval run,
    or failed with the error."""
    import uuid

    from services.evaluator.jobs import run_eval_job
    from services.evaluator.layout import LayoutError
    from services.evaluator.records import earlier_runs
    from services.evaluator.report import write_report

    if fmt not in ("univr", "mteb"):
        raise typer.BadParameter(f"--format must be univr or mteb, not {fmt!r}")
    job_id = job or str(uuid.uuid4())
    params = {
        "uvrb": str(uvrb),
        "model": model or None,
        "adapter": adapter,
        "datasets": [d for d in datasets.split(",") if d] or None,
    }
    try:
        result = run_eval_job(job_id, params, out=out)
    except (LayoutError, KeyError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc} (job {job_id})", err=True)
        raise typer.Exit(2) from exc
    if report:
        write_report(result, report, earlier_runs())
    summary = {
        "job": job_id,
        "out": str(out),
        "eval_run_id": result.get("eval_run_id"),
        "abilities": result["abilities"],
        "wall_seconds": result["wall_seconds"],
    }
    if fmt == "mteb":
        from services.evaluator.mteb_format import write_mteb

        mteb_dir = out.with_suffix("") if out.suffix else out.parent / (out.name + "-mteb")
        summary["mteb"] = str(write_mteb(result, mteb_dir)[0].parent)
    show(summary, json_out=json_out, human=_print_run)


def _print_run(summary: dict) -> None:
    """The run's abilities on one line each (a missing score as —), then where it was written."""
    typer.echo(f"eval job {summary['job']} ({summary['wall_seconds']:.0f} s)")
    for name, score in summary["abilities"].items():
        typer.echo(f"  {name:<6} {MISSING if score is None else f'{score:.3f}'}")
    typer.echo(
        f"results: {summary['out']}" + (f"  mteb: {summary['mteb']}" if "mteb" in summary else "")
    )


@app.command("aggregate")
def aggregate_cmd(
    scores: Path = typer.Argument(..., help='JSON {"<dataset>": score, ...} for the 16 datasets.'),
    json_out: bool = json_option(),
) -> None:
    """Print TXT, CMP, VIS, CG, FG, LC, S, T, PR, AVG_A, AVG_D (one per line, or as JSON)."""
    from services.evaluator.aggregate import aggregate

    try:
        data = json.loads(scores.read_text())
        if "datasets" in data and isinstance(data["datasets"], dict):  # a results file
            data = {k: v["score"] for k, v in data["datasets"].items()}
        abilities = aggregate({k: float(v) for k, v in data.items()})
    except (ValueError, KeyError, TypeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    show(abilities, json_out=json_out)


@app.command("worker")
def worker_cmd(concurrency: int = typer.Option(1)) -> None:
    """Consume eval jobs (checkpoint.ready events) from the eval queue."""
    import services.evaluator.tasks  # noqa: F401
    from shared.queue import QUEUE_EVAL, run_worker

    run_worker([QUEUE_EVAL], concurrency=concurrency)
