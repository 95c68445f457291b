"""`univr model`: build the tiny offline bundle, describe a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from shared.output import json_option, show

app = typer.Typer(
    help="Models: the tiny offline Qwen2.5-VL / Qwen2-VL bundles, checkpoint info.",
    no_args_is_help=True,
)


@app.command("tiny")
def tiny(
    out: Path = typer.Option(..., help="Folder to write the bundle to."),
    seed: int = typer.Option(0, help="Seed of the random weights."),
    arch: str = typer.Option(
        "qwen2_5_vl", help="qwen2_5_vl (GVE's architecture) or qwen2_vl (GME's, a prober)."
    ),
    json_out: bool = json_option(),
) -> None:
    """Build a tiny Qwen2.5-VL or Qwen2-VL bundle offline (loads with from_pretrained(OUT))."""
    from shared.model.tiny import ARCHS, build_tiny_bundle

    if arch not in ARCHS:
        raise typer.BadParameter(
            f"unknown arch {arch!r}; use one of {', '.join(ARCHS)}", param_hint="--arch"
        )
    marker = out / "univr_bundle.json"
    if marker.exists():
        built = json.loads(marker.read_text())
        if built.get("seed") == seed and built.get("arch", "qwen2_5_vl") == arch:
            _path(out, json_out)
            return
    _path(build_tiny_bundle(out, seed, arch), json_out)


def _path(path: Path, json_out: bool) -> None:
    """The bundle's folder: its path alone (what scripts read), or ``{"path": ...}``."""
    show({"path": str(path)}, json_out=json_out, human=lambda r: typer.echo(r["path"]))


@app.command("info")
def info(
    path: str = typer.Argument(..., help="A checkpoint folder or hub id."),
    adapter: str | None = typer.Option(None, help="A LoRA adapter folder."),
    json_out: bool = json_option(),
) -> None:
    """Load a checkpoint and print its embedding dimension and model id."""
    from shared.model import Embedder

    e = Embedder(path, adapter)
    result = {
        "path": path,
        "adapter": adapter,
        "model_id": e.model_id,
        "dim": e.dim,
        "device": str(e.device),
        "dtype": str(e.dtype),
    }
    show(result, json_out=json_out)
