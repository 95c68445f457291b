"""The demo's epoch-1 prober (SPEC §4.2): the stand-in for an off-the-shelf embedder such as
GME-7B. The demo's tiny model is trained beforehand on procedural videos disjoint from the demo's
snapshot (world seeds from ``seed + PROBER_SEED_OFFSET``, rendered by `univr media snapshot`, no
synthesis), merged into a model folder (`univr train export`) and named as ``train.prober`` of
every training run of the demo. It is a stage of its own, so a re-run reuses it;
``--prober-steps 0`` turns it off (the prober is then the model being trained)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.demo.stages import StageRunner

PROBER_SEED_OFFSET = 200_000  # the demo's world seeds: seed; UVRB-mini: seed + 100000
STAGE = "prober"


def train_prober(
    runner: StageRunner,
    out: Path,
    model: str,
    *,
    seed: int,
    videos: int,
    steps: int,
    batch_size: int,
) -> dict[str, Any]:
    """Render ``videos`` world videos, train ``model`` on them for ``steps`` steps, merge the
    adapter into ``<out>/home/models/prober``; the stage's record (``path`` None when off)."""
    if steps <= 0:
        return {"path": None, "steps": 0}
    world_seed = seed + PROBER_SEED_OFFSET
    snap = runner.univr(
        STAGE,
        ["media", "snapshot", "--videos", str(videos), "--seed", str(world_seed)]
        + ["--name", "prober", "--json"],
        json_out=True,
    )
    run = runner.univr(
        STAGE, _train_args(snap["id"], model, out, world_seed, steps, batch_size), json_out=True
    )
    path = out / "home" / "models" / "prober"
    runner.univr(STAGE, ["train", "export", "--run", run["run_id"], "--out", str(path)])
    return {
        "path": str(path),
        "videos": videos,
        "steps": run.get("steps", steps),
        "world_seed": world_seed,
        "snapshot": snap["id"],
        "run_id": run["run_id"],
        "train_seconds": run.get("wall_seconds"),
        "heldout_t2v_r1_before": run.get("heldout_t2v_r1_before"),
        "heldout_t2v_r1_after": run.get("heldout_t2v_r1_after"),
    }


def _train_args(
    snapshot: str, model: str, out: Path, seed: int, steps: int, batch_size: int
) -> list[str]:
    return [
        "train",
        "run",
        "--snapshot",
        snapshot,
        "--model",
        model,
        "--sampler",
        "uniform",
        "--steps",
        str(steps),
        "--batch-size",
        str(batch_size),
        "--seed",
        str(seed),
        "--out",
        str(out / "train" / STAGE),
        "--preset",
        "tiny",
        "--json",
    ]
