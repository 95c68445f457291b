"""`univr media generate`: a raw corpus from the procedural world."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import typer

from shared.world.generate import generate

app = typer.Typer(
    help="Procedural video world: generate raw corpora with ground truth.", no_args_is_help=True
)


@app.command("generate")
def generate_cmd(
    out: Path = typer.Option(..., help="Folder for the videos, sidecars and manifest.jsonl."),
    videos: int = typer.Option(100, min=1, help="Number of ordinary videos."),
    seed: int = typer.Option(0, help="Seed: the same seed gives the same world."),
    long: int = typer.Option(
        0, "--long", min=0, help="How many of them are long multi-shot videos."
    ),
    failures: bool = typer.Option(
        False, help="Add static, near-duplicate, mismatched, truncated, garbage and empty files."
    ),
    workers: int = typer.Option(0, help="Render processes (0: one per core, at most 4)."),
    prefix: str = typer.Option("w", help="Prefix of the video ids."),
) -> None:
    """Render VIDEOS short videos (plus failure cases) into OUT."""
    t0 = time.perf_counter()
    vids = generate(
        out,
        videos,
        seed,
        long_videos=long,
        failures=failures,
        workers=workers or None,
        prefix=prefix,
    )
    summary = {
        "out": str(out),
        "videos": len(vids),
        "failures": dict(Counter(v.failure for v in vids if v.failure)),
        "seconds_of_video": round(sum(v.sidecar["duration_s"] for v in vids), 1),
        "wall_seconds": round(time.perf_counter() - t0, 2),
    }
    typer.echo(json.dumps(summary))
