"""Snapshots that mix datasets with weights (`univr data snapshot --mix NAME=WEIGHT`): ``uvrd``
names the synthesized pairs, any other name an imported dataset (``pairs.dataset``). A weight in
(0, 1] keeps that fraction of the dataset's pairs, chosen by a hash of the pair id (the same pairs
for the same weight, every time); a dataset not named is left out."""

from __future__ import annotations

import zlib
from typing import Any

from sqlalchemy import or_

from shared.db.models import Pair

SYNTHESIZED = "uvrd"  # the dataset name of synthesized pairs (their ``dataset`` is empty)
BUCKETS = 1_000_000


def parse_mix(items: list[str]) -> dict[str, float]:
    """``["uvrd=1", "msmarco=0.25"]`` → ``{"uvrd": 1.0, "msmarco": 0.25}``."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, weight = item.partition("=")
        try:
            w = float(weight) if sep else 1.0
        except ValueError:
            raise ValueError(f"--mix {item!r}: the weight must be a number") from None
        if not name or not 0.0 < w <= 1.0:
            raise ValueError(f"--mix {item!r}: give NAME=WEIGHT with 0 < WEIGHT <= 1")
        out[name.strip()] = w
    return out


def where(mix: dict[str, float]) -> Any:
    """The SQL condition selecting the pairs of the named datasets."""
    named = [n for n in mix if n != SYNTHESIZED]
    conds = [Pair.dataset.in_(named)] if named else []
    if SYNTHESIZED in mix:
        conds.append(Pair.dataset.is_(None))
    return or_(*conds)


def keeps(mix: dict[str, float] | None, dataset: str | None, pair_id: str) -> bool:
    if not mix:
        return True
    weight = mix.get(dataset or SYNTHESIZED, 0.0)
    return zlib.crc32(pair_id.encode()) % BUCKETS < weight * BUCKETS
