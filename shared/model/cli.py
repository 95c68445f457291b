"""`univr model`: build the tiny offline bundle, describe a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Models: the tiny offline Qwen2.5-VL bundle, checkpoint info.", no_args_is_help=True)


@app.command("tiny")
def tiny(out: Path = typer.Option(..., help="Folder to write the bundle to."),
         seed: int = typer.Option(0, help="Seed of the random weights.")) -> None:
    """Build the tiny Qwen2.5-VL bundle offline (loads with from_pretrained(OUT))."""
    from shared.model.tiny import build_tiny_bundle

    if (out / "univr_bundle.json").exists() and json.loads((out / "univr_bundle.json").read_text()).get("seed") == seed:
        typer.echo(str(out))
        return
    typer.echo(str(build_tiny_bundle(out, seed)))


@app.command("info")
def info(path: str = typer.Argument(..., help="A checkpoint folder or hub id."),
         adapter: str | None = typer.Option(None, help="A LoRA adapter folder.")) -> None:
    """Load a checkpoint and print its embedding dimension and model id."""
    from shared.model import Embedder

    e = Embedder(path, adapter)
    typer.echo(json.dumps({"path": path, "adapter": adapter, "model_id": e.model_id, "dim": e.dim,
                           "device": str(e.device), "dtype": str(e.dtype)}))
