"""``univr train run`` as a user runs it, with knobs from the environment only: the run records the
resolved sampler / batch size / seed (issue 16), its length is one pass over the task-weighted data
per epoch when no step count is given, piped output logs one-line progress records, and TensorBoard
event files hold the loss series (issue 20)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from .world_snapshot import build_world_snapshot

VIDEOS, BATCH, EPOCHS = 8, 4, 2  # T2V and T2I: 8 pairs each → 2 + 2 steps per pass


def test_env_knobs_are_recorded_and_progress_and_tensorboard_are_written(
    tmp_path, tiny_model_dir, univr_home
):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from shared.db import session_scope
    from shared.db.models import TrainingRun

    snapshot = build_world_snapshot(VIDEOS, seed=3, tasks=("T2V", "T2I"), name="knobs")
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIVR_")}
    env.update(
        UNIVR_HOME=str(univr_home),
        HF_HUB_OFFLINE="1",
        UNIVR_TRAIN__SAMPLER="uniform",
        UNIVR_TRAIN__BATCH_SIZE=str(BATCH),
        UNIVR_TRAIN__SEED="7",
        UNIVR_TRAIN__EPOCHS=str(EPOCHS),
        UNIVR_TRAIN__HELDOUT_FRACTION="0",
    )
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-c",
        "from shared.cli import main; main()",
        "train",
        "run",
        "--snapshot",
        snapshot,
        "--model",
        str(tiny_model_dir),
        "--preset",
        "tiny",
        "--run-id",
        "knobs",
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    steps = EPOCHS * 2 * -(-VIDEOS // BATCH)

    with session_scope() as s:
        config = s.get(TrainingRun, "knobs").config
    train = config["train"]
    assert (train["sampler"], train["batch_size"], train["seed"]) == ("uniform", BATCH, 7)
    assert config["schedule"] == {
        "total_steps": steps,
        "epochs": EPOCHS,
        "steps_per_epoch": steps // EPOCHS,
        "pass_steps": steps // EPOCHS,
    }

    # piped: the logdir at the start, then one-line records (step, loss, lr, σ, task, samples/s,
    # ETA)
    log = proc.stderr
    assert f"tracking: tensorboard {(out / 'tensorboard').resolve()}" in log
    records = re.findall(
        r"^train step (\d+)/(\d+) loss [\d.]+ lr \S+ σ [\d.]+ "
        r"task (T2V|T2I) [\d.]+ samples/s ETA \S+$",
        log,
        re.MULTILINE,
    )
    assert records, log[-3000:]
    assert {int(total) for _, total, _ in records} == {steps}
    assert {1, steps} <= {int(step) for step, _, _ in records}

    # TensorBoard: the loss of every step, as the tensorboard package reads it
    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    loss = acc.Scalars("train/loss")
    assert [e.step for e in loss] == list(range(1, steps + 1))
    result_curve = [c[1] for c in json.loads((out / "result.json").read_text())["curve"]]
    assert [round(e.value, 5) for e in loss] == result_curve
    assert {"train/lr", "train/sigma", "heldout/t2v_r1"} <= set(acc.Tags()["scalars"])
