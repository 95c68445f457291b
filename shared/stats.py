"""Seed statistics for ablations: mean ± std over seeds, and whether two settings differ by more
than their seed noise (Welch's two-sided t-test at ``alpha``; with one seed each nothing is
significant, since the noise is unknown). The trainer's `univr train ablation` and the demo use
it."""

from __future__ import annotations

import math
from typing import Any

ALPHA = 0.05


def seed_summary(values: list[float]) -> dict[str, Any]:
    """``{"mean", "std", "seeds"}``: std is the sample std (n − 1), 0.0 for a single seed."""
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    n = len(vals)
    mean = sum(vals) / n if n else float("nan")
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "seeds": vals}


def differs(a: list[float], b: list[float], alpha: float = ALPHA) -> dict[str, Any]:
    """Welch's t-test of a vs b: ``{"p_value", "significant"}`` (p None when it cannot be told:
    fewer than two seeds on a side, or no spread at all with equal means)."""
    from scipy.stats import ttest_ind

    sa, sb = seed_summary(a)["seeds"], seed_summary(b)["seeds"]
    if len(sa) < 2 or len(sb) < 2:
        return {"p_value": None, "significant": False}
    if max(sa) == min(sa) and max(sb) == min(sb):
        same = sa[0] == sb[0]
        return {"p_value": 1.0 if same else 0.0, "significant": not same}
    p = float(ttest_ind(sa, sb, equal_var=False).pvalue)
    return {"p_value": p, "significant": p < alpha}


def ablation(
    values: dict[str, list[float]], a: str = "pyramid", b: str = "uniform"
) -> dict[str, Any]:
    """``{a: {mean, std, seeds}, b: {...}, "significant": bool, "p_value": float | None}``."""
    out: dict[str, Any] = {name: seed_summary(v) for name, v in values.items()}
    out.update(differs(values.get(a, []), values.get(b, [])))
    return out
