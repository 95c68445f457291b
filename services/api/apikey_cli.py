"""`univr apikey`: create, list and revoke API keys."""

from __future__ import annotations

import typer

from shared.output import json_option, show

app = typer.Typer(help="API keys for the search API (stored hashed).", no_args_is_help=True)


@app.command("create")
def create_cmd(
    name: str = typer.Option(..., help="Who the key is for."),
    scopes: str = typer.Option("search", help="Comma-separated: search, jobs, admin."),
    json_out: bool = json_option(),
) -> None:
    """Create a key and print it once (only its hash is stored): the key alone on its line, or
    ``{"name", "scopes", "key"}`` with --json."""
    from services.api.keys import create_key

    wanted = [s.strip() for s in scopes.split(",") if s.strip()]
    try:
        key = create_key(name, wanted)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    result = {"name": name, "scopes": wanted, "key": key}
    show(result, json_out=json_out, human=lambda r: typer.echo(r["key"]))


@app.command("list")
def list_cmd(json_out: bool = json_option()) -> None:
    """The keys (id, name, scopes, revoked, created), never their secrets."""
    from services.api.keys import list_keys

    show(list_keys(), json_out=json_out, indent=1, title="API keys")


@app.command("revoke")
def revoke_cmd(key_id: str = typer.Argument(...), json_out: bool = json_option()) -> None:
    """Revoke the key KEY_ID (its requests are refused from now on)."""
    from services.api.keys import revoke_key

    if not revoke_key(key_id):
        typer.echo("no such key", err=True)
        raise typer.Exit(1)
    show({"revoked": key_id}, json_out=json_out, human=lambda r: typer.echo(f"revoked {key_id}"))
