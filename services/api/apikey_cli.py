"""`univr apikey`: create, list and revoke API keys."""

from __future__ import annotations

import json

import typer

app = typer.Typer(help="API keys for the search API (stored hashed).", no_args_is_help=True)


@app.command("create")
def create_cmd(
    name: str = typer.Option(..., help="Who the key is for."),
    scopes: str = typer.Option("search", help="Comma-separated: search, jobs, admin."),
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from services.api.keys import create_key

    try:
        typer.echo(create_key(name, [s.strip() for s in scopes.split(",") if s.strip()]))
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command("list")
def list_cmd() -> None:
    from services.api.keys import list_keys

    typer.echo(json.dumps(list_keys(), indent=1))


@app.command("revoke")
def revoke_cmd(key_id: str = typer.Argument(...)) -> None:
    from services.api.keys import revoke_key

    if not revoke_key(key_id):
        typer.echo("no such key", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")
