"""Ability scores from per-dataset scores, exactly as SPEC §1.3 (it reproduces the paper's
published ability scores from its per-dataset scores)."""

from __future__ import annotations

from collections.abc import Mapping
from statistics import mean

from services.evaluator.registry import DATASETS


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return mean(vals) if len(vals) == len(values) and vals else None


def aggregate(scores: Mapping[str, float]) -> dict[str, float | None]:
    """``{dataset short name: score}`` → TXT, CMP, VIS, CG, FG, LC, S, T, PR, AVG_A, AVG_D.
    An ability whose datasets are not all present is None."""
    unknown = set(scores) - {d.short for d in DATASETS}
    if unknown:
        raise KeyError(f"unknown datasets {sorted(unknown)}")
    g = scores.get
    out: dict[str, float | None] = {}
    out["CG"] = _mean([g("MSRVTT"), g("DiDeMo"), g("CRB-G")])
    out["S"] = _mean([g("CRB-S"), g("VDC-O")])
    out["T"] = _mean([g("CRB-T"), g("CMRB")])
    out["PR"] = _mean([g("DREAM-E"), g("LoVR-TH"), g("PEV-K")])
    out["FG"] = _mean(
        [out["S"], out["T"], out["PR"]]
    )  # mean of the three sub-domains, not of 7 datasets
    out["LC"] = _mean([g("LoVR-V"), g("VDC-D")])
    out["TXT"] = _mean([out["CG"], out["FG"], out["LC"]])  # not the mean of the 12 textual datasets
    out["CMP"] = _mean([g("MS-TI"), g("MS-TV")])
    out["VIS"] = _mean([g("MSRVTT-I2V"), g("LoVR-C2V")])
    out["AVG_A"] = _mean([out[k] for k in ("TXT", "CMP", "VIS", "CG", "FG", "LC")])
    out["AVG_D"] = _mean([g(d.short) for d in DATASETS])
    order = ("TXT", "CMP", "VIS", "CG", "FG", "LC", "S", "T", "PR", "AVG_A", "AVG_D")
    return {k: out[k] for k in order}
