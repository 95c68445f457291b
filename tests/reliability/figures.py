"""The figures each reliability scenario measured, printed as one table at the end of the run
(``make reliability``; also after ``make test``, which runs the short form).

``UNIVR_TEST_RELIABILITY=full`` (set by ``make reliability``) selects the long form of every
scenario; without it each scenario runs its short form, sized for CI."""

from __future__ import annotations

import math
import os
from typing import Any

FULL = os.environ.get("UNIVR_TEST_RELIABILITY", "").lower() == "full"

COLUMNS = (
    "scenario",
    "faults",
    "expected",
    "completed",
    "lost",
    "duplicated",
    "retries",
    "requests",
    "errors",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "wall_s",
)

ROWS: list[dict[str, Any]] = []


def size(short: int, full: int) -> int:
    """The size of a scenario: ``full`` under ``make reliability``, ``short`` otherwise."""
    return full if FULL else short


def record(scenario: str, **figures: Any) -> dict[str, Any]:
    """Add one row to the table (call it before the assertions, so a failing scenario still
    shows)."""
    row = {"scenario": scenario, **figures}
    ROWS.append(row)
    return row


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}" if value >= 10 else f"{value:.2f}"
    return str(value)


def table(rows: list[dict[str, Any]] | None = None) -> list[str]:
    rows = ROWS if rows is None else rows
    extra = [k for r in rows for k in r if k not in COLUMNS]
    cols = [*COLUMNS, *dict.fromkeys(extra)]
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return out
