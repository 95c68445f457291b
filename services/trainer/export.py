"""Merged export: base model + a checkpoint's LoRA adapter → one Hugging Face model folder."""

from __future__ import annotations

import tempfile
from pathlib import Path

from services.trainer import checkpoint as ckpt
from shared.db import init_db, session_scope
from shared.db.models import TrainingRun


def export_merged(run_id: str, step: int | None, out: str | Path) -> Path:
    from peft import PeftModel
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    init_db()
    with session_scope() as s:
        run = s.get(TrainingRun, run_id)
        if run is None:
            raise KeyError(f"no training run {run_id}")
        base = run.base_model
    if step:
        prefix = f"checkpoints/{run_id}/{step:08d}"
    else:
        last = ckpt.latest(run_id)
        if last is None:
            raise KeyError(f"training run {run_id} has no checkpoint")
        prefix = last["prefix"]
    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt.download_adapter(prefix, tmp)
        model = PeftModel.from_pretrained(
            Qwen2_5_VLForConditionalGeneration.from_pretrained(base), tmp
        ).merge_and_unload()
    model.save_pretrained(out)
    AutoProcessor.from_pretrained(base).save_pretrained(out)
    return out
