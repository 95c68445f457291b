"""SIGKILL the trainer at a random step; the resumed run ends with the same weights as an
uninterrupted run with the same seed."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from .conftest import univr


def _train_cmd(th: dict, run_id: str, out: str) -> list[str]:
    return [sys.executable, "-c", "from shared.cli import main; main()", "train", "run", "--snapshot", th["snapshot"],
            "--model", th["model"], "--steps", "12", "--batch-size", "8", "--preset", "tiny", "--seed", "5",
            "--run-id", run_id, "--out", out, "--json"]


@pytest.mark.slow
def test_killed_and_resumed_run_equals_uninterrupted(trained_home, tmp_path):
    env = dict(trained_home["env"], UNIVR_TRAIN__CHECKPOINT_EVERY="2", UNIVR_TRAIN__EPOCHS="3")
    ref = subprocess.run(_train_cmd(trained_home, "ref", str(tmp_path / "ref")), env=env, capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-2000:]
    latest = os.path.join(env["UNIVR_HOME"], "objects", "checkpoints", "victim", "latest.json")
    kill_after = random.Random().choice([2, 4, 6, 8])
    kills = 0
    for _attempt in range(4):
        proc = subprocess.Popen(_train_cmd(trained_home, "victim", str(tmp_path / "victim")), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
        while proc.poll() is None:
            step = json.load(open(latest))["step"] if os.path.exists(latest) else 0
            if kills < 2 and step >= kill_after * (kills + 1) // (kills + 1) + 2 * kills:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                kills += 1
                break
            time.sleep(0.05)
        else:
            assert proc.returncode == 0
            break
    assert kills >= 1
    result = json.loads(proc.stdout.read().decode().strip().splitlines()[-1])
    assert result["steps"] == 12
    a = load_file(str(tmp_path / "ref" / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "victim" / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the merged export embeds like base + adapter
    univr("train", "export", "--run", "victim", "--out", str(tmp_path / "merged"), env=env)
    from shared.model import Embedder, EmbedInput

    items = [EmbedInput(text="a red circle moving left")]
    merged = Embedder(str(tmp_path / "merged")).embed(items)
    adapted = Embedder(trained_home["model"], str(tmp_path / "victim" / "adapter")).embed(items)
    assert float((merged * adapted).sum()) > 0.9999
