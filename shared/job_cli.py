"""`univr job`: follow and cancel any job (synth, train, eval, index) by its id, with the lease
timeline of a long job (claimed, takeover, resumed, cancelled, completed)."""

from __future__ import annotations

import typer

from shared.output import fields, json_option, show, table

app = typer.Typer(help="Jobs of every service: show one, cancel one.", no_args_is_help=True)


def timeline(job_id: str) -> list[dict]:
    """The lease events of a job, oldest first."""
    from sqlalchemy import select

    from shared.db import session_scope
    from shared.db.models import JobEvent

    with session_scope() as s:
        rows = (
            s.execute(
                select(JobEvent)
                .where(JobEvent.job_id == job_id, JobEvent.stage == "lease")
                .order_by(JobEvent.id)
            )
            .scalars()
            .all()
        )
        return [
            {
                "at": r.created_at.isoformat(),
                "event": r.state,
                "attempt": r.attempt,
                "reason": r.reason,
                **(r.detail or {}),
            }
            for r in rows
        ]


@app.command("show")
def show_cmd(job_id: str, json_out: bool = json_option()) -> None:
    """The job's row (state, lease, progress, error, result) and its lease timeline."""
    from shared.db import init_db, session_scope
    from shared.db.models import Job

    init_db()
    with session_scope() as s:
        job = s.get(Job, job_id)
        if job is None:
            typer.echo(f"no job {job_id}", err=True)
            raise typer.Exit(1)
        row = {
            c: getattr(job, c)
            for c in (
                "id",
                "kind",
                "state",
                "owner",
                "attempts",
                "heartbeat_at",
                "lease_expires_at",
                "progress",
                "error",
                "result",
            )
        }
    show({**row, "timeline": timeline(job_id)}, json_out=json_out, indent=2, human=_print_job)


def _print_job(job: dict) -> None:
    fields({k: v for k, v in job.items() if k != "timeline"}, title=f"job {job['id']}")
    if job["timeline"]:
        table(job["timeline"], ("at", "event", "attempt", "reason"), title="lease timeline")


@app.command("cancel")
def cancel_cmd(job_id: str, json_out: bool = json_option()) -> None:
    """Cancel a pending or running job: the worker holding it stops the run at its next heartbeat
    (SIGTERM, then SIGKILL after jobs.cancel_grace_s); a job that already ended is left as it is."""
    from shared.db.lease import cancel, log

    state = cancel(job_id)
    if state is None:
        typer.echo(f"no job {job_id}", err=True)
        raise typer.Exit(1)
    if state == "cancelled":
        log(job_id, "cancel requested")
    result = {"job": job_id, "state": str(state)}
    show(result, json_out=json_out, human=lambda r: typer.echo(f"job {job_id}: {r['state']}"))
