"""The evaluation report: one self-contained HTML page with the ability scores as a chart beside
the published baselines (SPEC §2) and earlier runs."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

ABILITY_ORDER = ("TXT", "CMP", "VIS", "CG", "FG", "LC", "S", "T", "PR", "AVG_A")
# SPEC §2, Table 2 (AVG, TXT, CMP, VIS, CG, FG, LC, S, T, PR) for a few reference models.
PUBLISHED: dict[str, tuple[float, ...]] = {
    "CLIP4Clip": (0.416, 0.401, 0.178, 0.714, 0.380, 0.360, 0.463, 0.559, 0.285, 0.236),
    "VLM2Vec-V2": (0.538, 0.587, 0.263, 0.613, 0.498, 0.502, 0.762, 0.809, 0.348, 0.348),
    "GME-7B": (0.562, 0.604, 0.341, 0.615, 0.518, 0.507, 0.788, 0.749, 0.373, 0.398),
    "GVE-3B": (0.571, 0.619, 0.304, 0.647, 0.552, 0.541, 0.764, 0.816, 0.430, 0.377),
    "GVE-7B": (0.600, 0.657, 0.312, 0.657, 0.587, 0.570, 0.814, 0.821, 0.469, 0.419),
}
COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f")


def published_abilities(name: str) -> dict[str, float]:
    avg, txt, cmp_, vis, cg, fg, lc, s, t, pr = PUBLISHED[name]
    return {
        "AVG_A": avg,
        "TXT": txt,
        "CMP": cmp_,
        "VIS": vis,
        "CG": cg,
        "FG": fg,
        "LC": lc,
        "S": s,
        "T": t,
        "PR": pr,
    }


def _bars(series: dict[str, dict[str, Any]], width: int = 900, height: int = 300) -> str:
    left, top, bottom, right = 36, 20, 30, 150
    pw, ph = width - left - right, height - top - bottom
    gw = pw / len(ABILITY_ORDER)
    bw = gw * 0.85 / max(len(series), 1)
    parts = [
        f'<svg class="chart" width="{width}" height="{height}"'
        ' xmlns="http://www.w3.org/2000/svg"'
        ' font-size="11" font-family="sans-serif">'
    ]
    for frac in (0, 0.25, 0.5, 0.75, 1.0):
        y = top + ph - frac * ph
        parts.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y}" y2="{y}" stroke="#eee"/>'
            f'<text x="{left - 4}" y="{y + 4}" text-anchor="end">{frac:.2f}</text>'
        )
    for gi, ab in enumerate(ABILITY_ORDER):
        for si, (name, vals) in enumerate(series.items()):
            v = vals.get(ab)
            if v is None:
                continue
            h = max(float(v), 0) * ph
            parts.append(
                f'<rect x="{left + gi * gw + si * bw:.1f}" y="{top + ph - h:.1f}"'
                f' width="{bw:.1f}" height="{h:.1f}" '
                f'fill="{COLORS[si % len(COLORS)]}">'
                f"<title>{escape(name)} {ab}: {float(v):.3f}</title></rect>"
            )
        parts.append(
            f'<text x="{left + gi * gw + gw * 0.4:.1f}" y="{top + ph + 14}"'
            f' text-anchor="middle">{ab}</text>'
        )
    for si, name in enumerate(series):
        parts.append(
            f'<rect x="{width - right + 8}" y="{top + si * 14}" width="10" height="10"'
            f' fill="{COLORS[si % len(COLORS)]}"/>'
            f'<text x="{width - right + 22}" y="{top + si * 14 + 9}">{escape(name[:22])}</text>'
        )
    return "".join(parts) + "</svg>"


def write_report(
    result: dict[str, Any], path: str | Path, earlier: list[dict[str, Any]] | None = None
) -> Path:
    series = {"this run": result["abilities"]}
    for run in (earlier or [])[:3]:
        if run.get("abilities") and run["abilities"] != result["abilities"]:
            series[f"earlier {run['id'][:8]}"] = run["abilities"]
    for name in ("GVE-3B", "GVE-7B", "CLIP4Clip"):
        series[f"{name} (paper)"] = published_abilities(name)
    rows = "".join(
        f"<tr><td>{escape(k)}</td><td>{v['metric']}</td><td>{v['score']:.3f}</td><td>{v['R@1']:.3f}</td>"
        f"<td>{v['R@10']:.3f}</td><td>{v['MRR']:.3f}</td><td>{v['nDCG@10']:.3f}</td><td>{v['n_queries']}</td>"
        f"<td>{v['n_corpus']}</td></tr>"
        for k, v in result["datasets"].items()
    )
    html = f"""<!doctype html><html><head><meta charset="utf-8"><title>UVRB report</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:20px auto}}td,th{{border:1px solid #ddd;padding:3px 6px}}table{{border-collapse:collapse}}</style></head><body>
<h1>UVRB report</h1><p>model <code>{escape(result["model"])}</code> adapter <code>{escape(str(result.get("adapter")))}</code> ·
benchmark <code>{escape(result["benchmark"])}</code> · {result["wall_seconds"]} s</p>
{_bars(series)}
<h2>Abilities</h2><table><tr>{"".join(f"<th>{k}</th>" for k in result["abilities"])}</tr>
<tr>{"".join("<td>–</td>" if v is None else f"<td>{v:.3f}</td>" for v in result["abilities"].values())}</tr></table>
<h2>Datasets</h2><table><tr><th>dataset</th><th>metric</th><th>score</th><th>R@1</th><th>R@10</th><th>MRR</th><th>nDCG@10</th><th>queries</th><th>corpus</th></tr>{rows}</table>
</body></html>"""  # noqa: E501 (an HTML template: its lines are the page's)
    path = Path(path)
    path.write_text(html, encoding="utf-8")
    return path
