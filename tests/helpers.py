"""Test helpers shared across areas: a tiny bundle built once per session, small generated
videos."""

from __future__ import annotations

import random
from pathlib import Path

from shared.model.tiny import build_tiny_bundle
from shared.world import render, sample_spec

_BUNDLES: dict[str, Path] = {}


def tiny_bundle(tmp_root: Path, seed: int = 0) -> Path:
    key = f"{tmp_root}:{seed}"
    if key not in _BUNDLES:
        _BUNDLES[key] = build_tiny_bundle(tmp_root / f"tiny-{seed}", seed)
    return _BUNDLES[key]


def small_videos(folder: Path, n: int, seed: int = 0, **kw) -> list[Path]:  # noqa: ANN003
    rng = random.Random(seed)
    return [
        render(sample_spec(rng, f"t{seed}-{i}", **kw), folder / f"t{seed}-{i}.mp4")
        for i in range(n)
    ]
