"""A saved adapter names its base portably (no absolute local path in adapter_config.json or the
model card), still opens with PEFT on the base given explicitly, and still loads in univr from a
checkpoint in the store (Embedder + adapter, as the evaluator and the indexer load it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from shared.model.portable import portable_model_name


def test_portable_names(univr_home: Path, tmp_path: Path) -> None:
    assert portable_model_name("Qwen/Qwen2.5-VL-3B-Instruct") == "Qwen/Qwen2.5-VL-3B-Instruct"
    assert portable_model_name("models/my-base") == "models/my-base"
    cached = tmp_path / "hub/models--Alibaba-NLP--GVE-3B/snapshots/0123abcd"
    assert portable_model_name(str(cached)) == "Alibaba-NLP/GVE-3B"
    assert portable_model_name(univr_home / "models" / "tiny") == "models/tiny"
    assert portable_model_name(tmp_path / "weights" / "Qwen2.5-VL-3B-Instruct") == (
        "Qwen2.5-VL-3B-Instruct"
    )


def test_checkpoint_adapter_is_portable_and_loads(tiny_model_dir: Path, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import Qwen2_5_VLForConditionalGeneration

    from services.trainer import checkpoint as ckpt
    from services.trainer.setup import _lora
    from shared.config import get_settings
    from shared.model import Embedder, EmbedInput
    from shared.storage import checkpoint_adapter

    embedder = Embedder(str(tiny_model_dir))
    _lora(embedder, get_settings().train)
    torch.manual_seed(3)
    with torch.no_grad():  # a trained-looking adapter (LoRA's B starts at zero: a no-op)
        for name, p in embedder.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    prefix = ckpt.save_checkpoint("run-p", 5, embedder.model, {}, {}, str(tiny_model_dir))
    adapter = checkpoint_adapter(prefix)

    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == tiny_model_dir.name
    for f in ("adapter_config.json", "README.md"):
        text = (adapter / f).read_text()
        assert str(tiny_model_dir) not in text and str(tmp_path.parent) not in text, f
    # the in-memory model keeps its own names
    assert embedder.model.get_base_model().config._name_or_path == str(tiny_model_dir)

    # PEFT on the base given explicitly: the same LoRA weights
    base = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_model_dir)
    loaded = PeftModel.from_pretrained(base, adapter)
    mine = {k: v for k, v in embedder.model.state_dict().items() if "lora_" in k}
    theirs = dict(loaded.state_dict())
    assert mine and all(torch.equal(v, theirs[k]) for k, v in mine.items())

    # univr: the checkpoint's adapter on the base embeds as the trained model does
    items = [
        EmbedInput(text="a red circle moves left"),
        EmbedInput(text="blue square", instruction="q"),
    ]
    embedder.model.eval()
    trained = embedder.embed(items)
    again = Embedder(str(tiny_model_dir), str(adapter)).embed(items)
    plain = Embedder(str(tiny_model_dir)).embed(items)
    assert np.allclose(trained, again, atol=1e-5)
    assert not np.allclose(plain, again, atol=1e-3)
