"""Inline SVG charts for the demo report: no JavaScript, no CDN, render in any browser."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

PALETTE = [
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
]


def _frame(width: int, height: int, body: str, title: str) -> str:
    return (
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}"'
        f' height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"'
        ' font-family="sans-serif" font-size="11">'
        f'<text x="{width / 2}" y="14" text-anchor="middle"'
        ' font-size="13" font-weight="bold">'
        f"{escape(title)}</text>"
        f"{body}</svg>"
    )


def _legend(names: Sequence[str], x: float, y: float) -> str:
    parts = []
    for i, name in enumerate(names):
        yy = y + i * 14
        parts.append(
            f'<rect x="{x}" y="{yy - 8}" width="10"'
            f' height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
            f'<text x="{x + 14}" y="{yy + 1}">{escape(name)}</text>'
        )
    return "".join(parts)


def line_chart(
    series: Mapping[str, Sequence[tuple[float, float]]],
    title: str,
    width: int = 560,
    height: int = 260,
    y_label: str = "",
) -> str:
    """One polyline per named series of (x, y) points."""
    points = [p for s in series.values() for p in s]
    if not points:
        return _frame(width, height, '<text x="20" y="40">no data</text>', title)
    left, right, top, bottom = 48, 130, 24, 30
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x0, x1 = min(xs), max(xs) or 1.0
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + ph - (y - y0) / (y1 - y0) * ph

    body = [f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>']
    for frac in (0, 0.5, 1):
        yv = y0 + frac * (y1 - y0)
        body.append(f'<text x="{left - 4}" y="{sy(yv) + 4}" text-anchor="end">{yv:.3g}</text>')
    body.append(f'<text x="{left}" y="{height - 8}">{x0:.0f}</text>')
    body.append(f'<text x="{left + pw}" y="{height - 8}" text-anchor="end">{x1:.0f}</text>')
    if y_label:
        body.append(
            f'<text x="12" y="{top + ph / 2}" transform="rotate(-90 12 {top + ph / 2})"'
            f' text-anchor="middle">{escape(y_label)}</text>'
        )
    for i, (name, pts) in enumerate(series.items()):
        if not pts:
            continue
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        body.append(
            f'<polyline fill="none" stroke="{PALETTE[i % len(PALETTE)]}" stroke-width="1.6"'
            f' points="{path}">'
            f"<title>{escape(name)}</title></polyline>"
        )
    body.append(_legend(list(series), width - right + 10, top + 10))
    return _frame(width, height, "".join(body), title)


def grouped_bars(
    groups: Sequence[str],
    series: Mapping[str, Mapping[str, float | None]],
    title: str,
    width: int = 760,
    height: int = 280,
) -> str:
    """Bars for each group (x axis), one colour per series; values in [0, 1]."""
    left, right, top, bottom = 40, 130, 24, 46
    pw, ph = width - left - right, height - top - bottom
    n = max(len(series), 1)
    gw = pw / max(len(groups), 1)
    bw = max(gw * 0.8 / n, 1)
    vmax = max([v for s in series.values() for v in s.values() if v is not None] + [1e-9])
    vmax = 1.0 if vmax <= 1.0 else vmax
    body = [f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#888"/>']
    for frac in (0, 0.25, 0.5, 0.75, 1):
        y = top + ph - frac * ph
        body.append(f'<line x1="{left}" y1="{y}" x2="{left + pw}" y2="{y}" stroke="#eee"/>')
        body.append(f'<text x="{left - 4}" y="{y + 4}" text-anchor="end">{frac * vmax:.2f}</text>')
    for gi, group in enumerate(groups):
        gx = left + gi * gw + gw * 0.1
        for si, (name, values) in enumerate(series.items()):
            value = values.get(group)
            if value is None:
                continue
            h = max(value, 0) / vmax * ph
            x = gx + si * bw
            body.append(
                f'<rect x="{x:.1f}" y="{top + ph - h:.1f}"'
                f' width="{bw:.1f}" height="{h:.1f}"'
                f' fill="{PALETTE[si % len(PALETTE)]}">'
                f"<title>{escape(name)} {escape(group)}: {value:.3f}</title></rect>"
            )
        body.append(
            f'<text x="{gx + gw * 0.4:.1f}" y="{top + ph + 12}" text-anchor="end"'
            f' transform="rotate(-35 {gx + gw * 0.4:.1f} {top + ph + 12})"'
            f">{escape(group)}</text>"
        )
    body.append(_legend(list(series), width - right + 10, top + 10))
    return _frame(width, height, "".join(body), title)
