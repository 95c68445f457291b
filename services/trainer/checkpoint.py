"""Checkpoints in the object store: the LoRA adapter, optimizer, scheduler, sampler and RNG states
and the resolved config, under ``checkpoints/<run>/<step>/``; ``latest.json`` names the newest
complete one (written last, so a run killed mid-save resumes from the previous checkpoint)."""

from __future__ import annotations

import io
import json
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shared.model.portable import save_adapter
from shared.storage import download_prefix, get_store


def rng_state() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def save_checkpoint(
    run_id: str,
    step: int,
    model,  # noqa: ANN001 - a PEFT model
    state: dict[str, Any],
    config: dict[str, Any],
    base: str,
) -> str:
    """``base``: the base model as the run was given it (recorded portably in the adapter's
    config: shared/model/portable.py)."""
    store = get_store()
    prefix = f"checkpoints/{run_id}/{step:08d}"
    with tempfile.TemporaryDirectory() as tmp:
        save_adapter(model, tmp, base)
        for f in Path(tmp).iterdir():
            store.put_file(f"{prefix}/adapter/{f.name}", f)
    buf = io.BytesIO()
    torch.save(state, buf)
    store.put_bytes(f"{prefix}/state.pt", buf.getvalue())
    store.put_bytes(f"{prefix}/config.json", json.dumps(config, indent=1, default=str).encode())
    store.put_bytes(
        f"checkpoints/{run_id}/latest.json", json.dumps({"step": step, "prefix": prefix}).encode()
    )
    return prefix


def latest(run_id: str) -> dict[str, Any] | None:
    store = get_store()
    key = f"checkpoints/{run_id}/latest.json"
    return json.loads(store.get_bytes(key)) if store.exists(key) else None


def load_state(prefix: str) -> dict[str, Any]:
    return torch.load(io.BytesIO(get_store().get_bytes(f"{prefix}/state.pt")), weights_only=False)


def download_adapter(prefix: str, dest: str | Path) -> Path:
    download_prefix(f"{prefix}/adapter/", dest)
    return Path(dest)


def training_state(state: Any, epoch: int) -> dict[str, Any]:  # noqa: ANN401
    """What a checkpoint saves of a ``TrainState`` (services/trainer/setup.py) besides the
    adapter."""
    return {
        "optimizer": state.opt.state_dict(),
        "scheduler": state.sched.state_dict(),
        "sampler": state.sampler.state_dict(),
        "batcher": state.batcher.state_dict(),
        "rng": rng_state(),
        "step": state.step,
        "epoch": epoch,
        "curve": state.curve,
        "probs_log": state.probs_log,
    }


def resume(state: Any, run_id: str) -> bool:  # noqa: ANN401
    """Restore ``state`` (a ``TrainState``) from the run's latest checkpoint; False when none."""
    found = latest(run_id)
    if not found:
        return False
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    saved = load_state(found["prefix"])
    with tempfile.TemporaryDirectory() as tmp:
        download_adapter(found["prefix"], tmp)
        weights = load_file(str(Path(tmp) / "adapter_model.safetensors"))
        set_peft_model_state_dict(state.embedder.model, weights)
    state.opt.load_state_dict(saved["optimizer"])
    state.sched.load_state_dict(saved["scheduler"])
    state.sampler.load_state_dict(saved["sampler"])
    state.batcher.load_state_dict(saved["batcher"])
    set_rng_state(saved["rng"])
    state.step, state.curve = saved["step"], saved["curve"]
    state.probs_log, state.epoch_done = saved["probs_log"], saved["epoch"]
    return True
