"""`univr media generate`: a raw corpus from the procedural world; `univr media snapshot`: a
training snapshot rendered straight from it (shared/world/snapshot.py)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import typer

from shared.output import json_option, show
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
    json_out: bool = json_option(),
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
    show(summary, json_out=json_out, title=f"generated {summary['videos']} videos in {out}")


@app.command("snapshot")
def snapshot_cmd(
    videos: int = typer.Option(96, min=2, help="One-shot, one-object videos to render."),
    seed: int = typer.Option(0, help="Seed: the same seed gives the same snapshot."),
    name: str = typer.Option("world", help="Snapshot name (also the prefix of its clip ids)."),
    side: int = typer.Option(64, min=16, help="Frame width and height in pixels."),
    tasks: str = typer.Option("T2V,I2V,T2I", help="Comma-separated tasks: T2V, I2V, T2I."),
    hard_negatives: int = typer.Option(0, min=0, help="Random other clips per video pair."),
    twins: int = typer.Option(
        1, min=1, help="Videos in groups of this many that differ in one captioned attribute."
    ),
    json_out: bool = json_option(),
) -> None:
    """Store a training snapshot straight from world renders (no synthesis); prints its id."""
    from shared.world.snapshot import build_world_snapshot

    t0 = time.perf_counter()
    task_list = tuple(t.strip() for t in tasks.split(",") if t.strip())
    snapshot_id = build_world_snapshot(
        videos,
        seed,
        size=(side, side),
        name=name,
        tasks=task_list,
        hard_negatives=hard_negatives,
        twins=twins,
    )
    summary = {
        "id": snapshot_id,
        "name": name,
        "videos": videos,
        "seed": seed,
        "twins": twins,
        "tasks": list(task_list),
        "wall_seconds": round(time.perf_counter() - t0, 2),
    }
    show(summary, json_out=json_out, title=f"snapshot {snapshot_id}")
