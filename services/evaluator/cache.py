"""Embedding cache per (model, dataset, item): one ``.npz`` shard per model and dataset, keyed by
the item's content key, so a re-run — or a second model over the same corpus — skips done work."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class EmbeddingCache:
    def __init__(self, root: str | Path, model_id: str, dataset: str):
        self.path = Path(root) / model_id / f"{dataset}.npz"
        self.items: dict[str, np.ndarray] = {}
        if self.path.exists():
            with np.load(self.path) as data:
                self.items = {k: data[k] for k in data.files}
        self.hits = 0

    def get(self, key: str) -> np.ndarray | None:
        vec = self.items.get(key)
        if vec is not None:
            self.hits += 1
        return vec

    def put_many(self, keys: list[str], vecs: np.ndarray) -> None:
        for k, v in zip(keys, vecs, strict=True):
            self.items[k] = v

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, **self.items)  # type: ignore[arg-type]  # numpy's stub: **kwds as allow_pickle
        os.replace(tmp, self.path)
