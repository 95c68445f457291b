"""A dataset snapshot made the way users make one: `univr synth run` with real workers on the
embedded broker, then `univr data snapshot`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def univr(*args: str, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", "from shared.cli import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("train-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIVR_")}
    env.update(UNIVR_HOME=str(root / "home"), HF_HUB_OFFLINE="1")
    from shared.world import generate

    generate(root / "raw", 40, seed=21, workers=2)
    univr("synth", "run", str(root / "raw" / "manifest.jsonl"), "--json", "--workers", "2", env=env)
    snap = json.loads(univr("data", "snapshot", "--name", "t", "--json", env=env))
    video_snap = json.loads(
        univr("data", "snapshot", "--name", "t2v-i2v", "--tasks", "T2V,I2V", "--json", env=env)
    )
    univr("model", "tiny", "--out", str(root / "tiny"), env=env)
    return {
        "env": env,
        "snapshot": snap["id"],
        "video_snapshot": video_snap["id"],
        "model": str(root / "tiny"),
        "root": root,
    }


def home_env(trained_home: dict, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point this test process at the snapshot's home."""
    from shared.config import get_settings
    from shared.db.session import reset_engines

    monkeypatch.setenv("UNIVR_HOME", trained_home["env"]["UNIVR_HOME"])
    get_settings.cache_clear()
    reset_engines()
    return Path(trained_home["env"]["UNIVR_HOME"])


@pytest.fixture(scope="session")
def world_home(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A home holding a snapshot of procedurally rendered one-object videos (tests/integration/
    trainer/world_snapshot.py) and the tiny bundle: enough distinct videos to measure held-out
    retrieval after a short CPU run."""
    from shared.config import get_settings
    from shared.db.session import reset_engines
    from shared.model.tiny import build_tiny_bundle

    from .world_snapshot import build_world_snapshot

    root = tmp_path_factory.mktemp("world-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIVR_")}
    env.update(UNIVR_HOME=str(root / "home"), HF_HUB_OFFLINE="1")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UNIVR_HOME", env["UNIVR_HOME"])
        get_settings.cache_clear()
        reset_engines()
        snapshot = build_world_snapshot(WORLD_VIDEOS, seed=WORLD_SEED, tasks=WORLD_TASKS)
        model = build_tiny_bundle(root / "tiny")
    get_settings.cache_clear()
    reset_engines()
    return {"env": env, "snapshot": snapshot, "model": str(model), "root": root}


WORLD_VIDEOS = 160
WORLD_SEED = 0
WORLD_TASKS = (
    "T2V",
    "T2I",
)  # with I2V instead of T2I the pyramid gives I2V 96% of epoch 1 (σ 0.1) and T2V stays near chance
