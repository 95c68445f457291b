"""`univr synth`: submit a source, follow a job, run workers, run a job to the end, collect the
store's garbage."""

from __future__ import annotations

import json
import os

import typer

from shared.output import json_option, show

app = typer.Typer(help="V-SynFlow: turn raw videos into retrieval pairs.", no_args_is_help=True)


@app.command("submit")
def submit_cmd(
    source: str = typer.Argument(
        ..., help="A folder, an s3://bucket/prefix, or a .jsonl/.csv manifest."
    ),
    fresh: bool = typer.Option(False, help="A new job even if this source was submitted before."),
    json_out: bool = json_option(),
) -> None:
    """Create the job of SOURCE (one item per video) and enqueue its work."""
    from services.synth.jobs import submit

    try:
        info = submit(source, fresh=fresh)
        show(
            info,
            json_out=json_out,
            human=lambda r: typer.echo(
                f"job {r['job']}: {r['items']} item(s), {r['enqueued']} enqueued"
            ),
        )
    except ValueError as exc:  # not a source, or a manifest that cannot be read as a whole
        if os.environ.get("UNIVR_DEBUG"):  # univr --debug: the traceback
            raise
        typer.echo(f"error: {str(exc)[:500]}", err=True)
        raise typer.Exit(2) from None


@app.command("status")
def status_cmd(
    job: str = typer.Argument(..., help="The job id."),
    items: bool = typer.Option(False, "--items", help="List the job's items (one page)."),
    limit: int = typer.Option(50, help="Items per page with --items."),
    state: str | None = typer.Option(None, help="Only items in this state, e.g. rejected."),
    after: str | None = typer.Option(None, help="Items after this item key (the next page)."),
    errors: int = typer.Option(10, help="How many of the newest errors to show."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Counts by state, totals and the newest errors of JOB; with --items, a page of its items."""
    from services.synth.records import job_summary

    try:
        summary = job_summary(
            job, limit=limit if items else 0, state=state, after=after, errors=errors
        )
    except (KeyError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    if json_out:
        typer.echo(json.dumps(summary, indent=1))
        return
    _print_summary(summary, items=items)


@app.command("jobs")
def jobs_cmd(
    limit: int = typer.Option(20, help="How many of the newest jobs to list."),
    state: str | None = typer.Option(
        None, help="Only jobs in this state: pending, running, completed, failed, cancelled."
    ),
    json_out: bool = json_option(),
) -> None:
    """The newest synthesis jobs with their state, items by state, clips and pairs (read from the
    per-job counters)."""
    from services.synth.records import recent_jobs
    from shared.db import init_db
    from shared.db.models import JobState
    from shared.errors import UserError

    if state is not None and state not in JobState.__members__:
        raise UserError(f"unknown job state {state!r}: one of {', '.join(JobState.__members__)}")
    init_db()
    rows = recent_jobs(limit=limit, state=state)
    if json_out:
        show(rows, json_out=True, indent=1)
        return
    show(
        [{**r, "created": (r["created"] or "")[:19].replace("T", " ")} for r in rows],
        json_out=False,
        columns=("job", "state", "created", "total", "counts", "clips", "pairs", "source"),
        title="synthesis jobs",
    )


def _print_summary(summary: dict, items: bool = True) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    reencoded = (
        f", re-encoded {summary['clips_reencoded']}" if summary.get("clips_reencoded") else ""
    )
    console.print(
        f"job {summary['job']}: [bold]{summary['state']}[/]  {summary['counts']}  "
        f"clips {summary['clips']}{reencoded}, pairs {summary['pairs']}"
    )
    for task, by in (summary.get("variants") or {}).items():
        console.print(f"  {task}: " + ", ".join(f"{v} {n}" for v, n in by.items()))
    for err in summary.get("errors", []):
        console.print(f"  {err['at'] or ''} {err['stage']} {err['state']}: {err['reason']}"[:160])
    if not items:
        return
    t = Table("item", "state", "stage", "clips", "reason")
    for it in summary["items"]:
        t.add_row(
            it["item"][-60:],
            it["state"],
            it["stage"] or "",
            str(it["clips"]),
            (it["reason"] or "; ".join(it["notes"]))[:90],
        )
    console.print(t)
    if summary.get("next"):
        console.print(f"more: --after {summary['next']!r}")


@app.command("gc")
def gc_cmd(
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Count what would be deleted; delete nothing."
    ),
    grace: float | None = typer.Option(
        None,
        help="Leave objects and clips newer than this many seconds (default: synth.gc_grace_s).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
) -> None:
    """Delete the clip and video objects no stored clip or pair needs (failed uploads, lost dedup
    races, rejected videos' frames) and clear the rows that marked them."""
    from services.synth.gc import collect_garbage
    from shared.config import get_settings

    settings = get_settings()
    if grace is not None and grace < settings.broker.hard_time_limit_s:
        typer.echo(
            "warning: a grace period under broker.hard_time_limit_s"
            f" ({settings.broker.hard_time_limit_s} s) "
            "can delete the uploads of a task running now",
            err=True,
        )
    report = collect_garbage(dry_run=dry_run, grace_s=grace)
    if json_out:
        typer.echo(json.dumps(report))
    else:
        verb = "would delete" if dry_run else "deleted"
        typer.echo(
            f"{verb} {report['objects_deleted']} object(s), {report['bytes_deleted']} bytes: "
            f"{report['clips']} clip(s), {report['videos']} video(s)"
            f"; {report['rows_unmarked']} row(s) "
            f"{'to clear' if dry_run else 'cleared'}; {report['skipped_recent']} left as recent "
            f"(< {report['grace_s']:.0f} s), {report['kept_for_snapshots']} kept for snapshots; "
            f"scanned {report['scanned']}"
        )
        for err in report["errors"]:
            typer.echo(f"error: {err}", err=True)
    if report["errors"]:
        raise typer.Exit(1)


@app.command("worker")
def worker_cmd(
    queues: str = typer.Option("media,caption,io", help="Comma-separated queues to consume."),
    concurrency: int = typer.Option(0, help="Worker processes (0: the configured default)."),
    pool: str = typer.Option("prefork", help="prefork | solo | threads"),
) -> None:
    """Start a synthesis worker on QUEUES."""
    from services.synth.worker import main

    main(
        [q.strip() for q in queues.split(",") if q.strip()],
        concurrency=concurrency or None,
        pool=pool,
    )


@app.command("run")
def run_cmd(
    source: str = typer.Argument(
        ..., help="A folder, an s3://bucket/prefix, or a .jsonl/.csv manifest."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the job summary as JSON."),
    workers: int = typer.Option(
        2, help="Local worker processes to start when none are running (0: never)."
    ),
    timeout: float = typer.Option(3600, help="Give up after this many seconds."),
    fresh: bool = typer.Option(False, help="A new job even if this source was submitted before."),
) -> None:
    """Run a whole job on SOURCE and wait for it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from services.synth.jobs import run

    with Progress(
        TextColumn("synthesis"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
        disable=json_out,
    ) as bar:
        task = bar.add_task("items", total=None)

        def progress(summary: dict) -> None:
            done = sum(
                v for k, v in summary["counts"].items() if k in ("done", "rejected", "failed")
            )
            bar.update(task, completed=done, total=summary["total"])

        try:
            summary = run(
                source, workers=workers, timeout_s=timeout, fresh=fresh, progress=progress
            )
        except ValueError as exc:  # not a source, or a manifest that cannot be read as a whole
            if os.environ.get("UNIVR_DEBUG"):  # univr --debug: the traceback
                raise
            typer.echo(f"error: {str(exc)[:500]}", err=True)
            raise typer.Exit(2) from None
    if json_out:
        typer.echo(json.dumps(summary))
    else:
        _print_summary(summary)
