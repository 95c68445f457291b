"""`univr api serve`: the search API and dashboard (uvicorn)."""

from __future__ import annotations

import typer

app = typer.Typer(help="The search API and dashboard.", no_args_is_help=True)


@app.command("serve")
def serve_cmd(
    host: str = typer.Option("", help="Bind address (default: settings.api.host)."),
    port: int = typer.Option(0, help="Port (default: settings.api.port)."),
) -> None:
    """Serve /v1/search, /v1/jobs, /healthz, /metrics, /docs and the dashboard at /."""
    import uvicorn

    from services.api.app import create_app
    from services.api.owner import announce, withdraw
    from shared.config import get_settings

    s = get_settings().api
    host, port = host or s.host, port or s.port
    app = create_app()
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    announce(f"http://{local}:{port}")  # `univr search` goes through this server meanwhile
    # on shutdown, inside the server: uvicorn re-raises SIGTERM/SIGINT after it, so no `finally`
    app.router.on_shutdown.append(withdraw)
    try:
        uvicorn.run(app, host=host, port=port, log_level="info")
    finally:
        withdraw()
