"""A base model's name as a saved LoRA adapter records it (``adapter_config.json``'s
``base_model_name_or_path``, the model card's ``base_model`` and its tag): the name the user gave,
never a path that only exists on the machine that trained it.

- a hub id (``Qwen/Qwen2.5-VL-3B-Instruct``) or a relative path: as given;
- a folder in the Hugging Face cache (``.../models--Qwen--Qwen2.5-VL-3B-Instruct/snapshots/<rev>``):
  its hub id;
- a folder under the univr home (the tiny bundle): its path relative to the home (``models/tiny``);
- any other absolute path: the folder's name.

univr itself never loads a base from an adapter's config: the Embedder, the evaluator and the
indexer always name the base explicitly (``Embedder(model, adapter)``)."""

from __future__ import annotations

import re
from pathlib import Path

from shared.config import Settings, get_settings

_HF_CACHE = re.compile(r"(?:^|/)models--([^/]+?)--([^/]+)/snapshots/[^/]+/?$")


def portable_model_name(name_or_path: str | Path, settings: Settings | None = None) -> str:
    """``name_or_path`` without anything machine-local (see the module's rules)."""
    name = str(name_or_path)
    path = Path(name).expanduser()
    if not path.is_absolute():
        return name
    cached = _HF_CACHE.search(path.as_posix())
    if cached:
        return f"{cached.group(1)}/{cached.group(2)}"
    home = (settings or get_settings()).home_path.resolve()
    try:
        return path.resolve().relative_to(home).as_posix()
    except ValueError:
        return path.resolve().name or "model"


def save_adapter(model, out: str | Path, base_name: str | Path) -> None:  # noqa: ANN001
    """``model.save_pretrained(out)`` for a PEFT model, with the base recorded as
    ``portable_model_name(base_name)`` in ``adapter_config.json`` and the model card (PEFT would
    write the base's ``_name_or_path``, an absolute path for a local checkpoint)."""
    name = portable_model_name(base_name)
    base = model.get_base_model()
    saved = {key: cfg.base_model_name_or_path for key, cfg in model.peft_config.items()}
    own = (base.config._name_or_path, base.__dict__.get("name_or_path"))
    try:
        for cfg in model.peft_config.values():
            cfg.base_model_name_or_path = name
        base.config._name_or_path = base.name_or_path = name
        # univr's LoRA never targets the embeddings; "auto" would look the base up on the Hub
        model.save_pretrained(out, save_embedding_layers=False)
    finally:
        base.config._name_or_path = own[0]
        if own[1] is None:
            base.__dict__.pop("name_or_path", None)
        else:
            base.name_or_path = own[1]
        for key, cfg in model.peft_config.items():
            cfg.base_model_name_or_path = saved[key]
