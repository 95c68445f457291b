"""`univr api serve`: the search API and dashboard (uvicorn)."""

from __future__ import annotations

import typer

app = typer.Typer(help="The search API and dashboard.", no_args_is_help=True)


@app.command("serve")
def serve_cmd(host: str = typer.Option("", help="Bind address (default: settings.api.host)."),
              port: int = typer.Option(0, help="Port (default: settings.api.port).")) -> None:
    """Serve /v1/search, /v1/jobs, /healthz, /metrics, /docs and the dashboard at /."""
    import uvicorn

    from services.api.app import create_app
    from shared.config import get_settings

    s = get_settings().api
    uvicorn.run(create_app(), host=host or s.host, port=port or s.port, log_level="info")
