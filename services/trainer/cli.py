"""`univr train`: run a training (directly or under torchrun), submit one to the trainer service,
serve training jobs, export a merged model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import typer
import yaml

from shared.output import json_option, show

app = typer.Typer(
    help="GVE training: LoRA + InfoNCE under the Modality Pyramid.", no_args_is_help=True
)


def _config(config: Path | None, **cli) -> dict:  # noqa: ANN003
    data = yaml.safe_load(config.read_text()) if config else {}
    data = data or {}
    for k, v in cli.items():
        if v is not None:
            data[k] = v
    if not data.get("snapshot"):
        raise typer.BadParameter("a snapshot id is required (--snapshot or in the config file)")
    return data


@app.command("run")
def run_cmd(
    config: Path | None = typer.Option(
        None, help="YAML file of TrainConfig fields (snapshot, model, steps, ...)."
    ),
    snapshot: str | None = typer.Option(None, help="Dataset snapshot id (univr data snapshot)."),
    model: str | None = typer.Option(
        None, help="Base checkpoint path or hub id (default: configured)."
    ),
    sampler: str | None = typer.Option(None, help="pyramid | uniform"),
    steps: int | None = typer.Option(None),
    batch_size: int | None = typer.Option(None),
    seed: int | None = typer.Option(None),
    out: str | None = typer.Option(None, help="Local output folder."),
    preset: str | None = typer.Option(
        None, help="gve (SPEC hyper-parameters) | tiny (the tiny bundle's recipe)."
    ),
    run_id: str | None = typer.Option(
        None, help="Run id (default: derived from the config; a rerun resumes it)."
    ),
    prober: str | None = typer.Option(
        None, help="Epoch-1 prober: a model path or hub id (train.prober; default: configured)."
    ),
    nproc: int = typer.Option(1, help="Processes (torchrun); gloo on CPU, nccl on GPU."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Train; resumes automatically from the run's latest checkpoint."""
    data = _config(
        config,
        snapshot=snapshot,
        model=model,
        sampler=sampler,
        steps=steps,
        batch_size=batch_size,
        seed=seed,
        out=out,
        preset=preset,
        run_id=run_id,
    )
    if prober is not None:
        data["overrides"] = {**(data.get("overrides") or {}), "prober": prober}
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        raise typer.Exit(_relaunch_under_torchrun(data, nproc, json_out))
    from services.trainer.loop import TrainConfig, train

    result = train(TrainConfig(**data))
    if int(os.environ.get("RANK", "0")) != 0:
        return
    _print_run(result, json_out)


def _relaunch_under_torchrun(data: dict, nproc: int, json_out: bool) -> int:
    """Run this command again under torchrun on ``nproc`` processes, the config written to the
    output folder; returns torchrun's exit status."""
    cfg_file = Path(data.get("out", "train-out")) / "config.yaml"
    cfg_file.parent.mkdir(parents=True, exist_ok=True)
    cfg_file.write_text(yaml.safe_dump(data))
    # --standalone: one node, rendezvous on a free local port (two runs on one host don't
    # collide on 29500)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "services.trainer.cli",
        "run",
        "--config",
        str(cfg_file),
    ] + (["--json"] if json_out else [])
    return subprocess.call(cmd)


def _print_run(result: dict, json_out: bool) -> None:
    if json_out:
        typer.echo(json.dumps(result))
    else:
        typer.echo(
            f"run {result['run_id']}: {result['steps']} steps in {result['wall_seconds']} s, "
            f"final loss {result['final_loss']}, held-out t2v R@1 "
            f"{result['heldout_t2v_r1_before']:.3f} → {result['heldout_t2v_r1_after']:.3f}; "
            f"adapter {result['adapter']}"
        )


@app.command("ablation")
def ablation_cmd(
    snapshot: str = typer.Option(..., help="Dataset snapshot id."),
    seeds: int = typer.Option(3, min=1, help="Seeds per sampler (seed, seed+1, ...)."),
    model: str | None = typer.Option(None, help="Base checkpoint path or hub id."),
    steps: int = typer.Option(300),
    batch_size: int = typer.Option(16),
    seed: int = typer.Option(42, help="First seed."),
    preset: str = typer.Option("gve", help="gve | tiny"),
    out: Path = typer.Option(Path("ablation-out"), help="Folder: one run per sampler and seed."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Train pyramid and uniform for N seeds each; held-out t2v R@1 as mean ± std per sampler and
    whether the difference exceeds the seed noise (Welch's t-test), printed as measured."""
    from services.trainer.loop import TrainConfig, train
    from shared.stats import ablation

    runs: dict[str, list[dict]] = {"pyramid": [], "uniform": []}
    for sampler in runs:
        for s in range(seed, seed + seeds):
            result = train(
                TrainConfig(
                    snapshot=snapshot,
                    model=model or "",
                    sampler=sampler,
                    steps=steps,
                    batch_size=batch_size,
                    seed=s,
                    preset=preset,
                    out=str(out / f"{sampler}-s{s}"),
                )
            )
            runs[sampler].append({"seed": s, **{k: result[k] for k in ABLATION_RUN_KEYS}})
    summary = {
        "runs": runs,
        "heldout_t2v_r1": ablation(
            {name: [r["heldout_t2v_r1_after"] for r in rs] for name, rs in runs.items()}
        ),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablation.json").write_text(json.dumps(summary))
    if json_out:
        typer.echo(json.dumps(summary))
        return
    _print_ablation(summary["heldout_t2v_r1"], list(runs))


# what ablation.json keeps of each run
ABLATION_RUN_KEYS = (
    "run_id",
    "adapter",
    "steps",
    "wall_seconds",
    "final_loss",
    "heldout_t2v_r1_before",
    "heldout_t2v_r1_after",
    "curve",
    "task_probs",
)


def _print_ablation(r1: dict, samplers: list[str]) -> None:
    for name in samplers:
        typer.echo(
            f"{name}: held-out t2v R@1 {r1[name]['mean']:.3f} ± {r1[name]['std']:.3f} over seeds "
            f"{[round(v, 3) for v in r1[name]['seeds']]}"
        )
    typer.echo(
        f"difference {'exceeds' if r1['significant'] else 'is within'} the seed noise "
        f"(Welch p = {r1['p_value']})"
    )


@app.command("submit")
def submit_cmd(
    config: Path | None = typer.Option(None),
    snapshot: str | None = typer.Option(None),
    sampler: str | None = typer.Option(None),
    steps: int | None = typer.Option(None),
    json_out: bool = json_option(),
) -> None:
    """Send a training job to the trainer service (train queue)."""
    from shared.db import init_db
    from shared.db.jobs import set_job_state
    from shared.db.lease import state_of
    from shared.db.models import JobState
    from shared.ids import stable_id
    from shared.queue import QUEUE_TRAIN, get_celery

    data = _config(config, snapshot=snapshot, sampler=sampler, steps=steps, emit_events=True)
    init_db()
    job_id = stable_id("train-job", json.dumps(data, sort_keys=True))
    # the same config is the same job: a live or finished one is left alone (the lease refuses a
    # second run), a failed or cancelled one starts again (and resumes from its last checkpoint)
    if state_of(job_id) in (None, JobState.failed, JobState.cancelled):
        set_job_state(job_id, JobState.pending, kind="train", params=data)
    get_celery().send_task("trainer.run", args=[job_id, data], queue=QUEUE_TRAIN)
    show({"job": job_id}, json_out=json_out, human=lambda r: typer.echo(f"job {job_id}"))


@app.command("worker")
def worker_cmd() -> None:
    """Consume training jobs from the train queue (one at a time)."""
    import services.trainer.tasks  # noqa: F401
    from shared.queue import QUEUE_TRAIN, run_worker

    run_worker([QUEUE_TRAIN], concurrency=1)


@app.command("export")
def export_cmd(
    run: str = typer.Option(..., help="Run id."),
    step: int | None = typer.Option(None),
    out: Path = typer.Option(..., help="Folder for the merged Hugging Face model."),
    json_out: bool = json_option(),
) -> None:
    """Merge a checkpoint's LoRA into its base model and save it (loads with from_pretrained)."""
    from services.trainer.export import export_merged

    path = str(export_merged(run, step, out))
    show({"path": path}, json_out=json_out, human=lambda r: typer.echo(path))


if __name__ == "__main__":
    app()
