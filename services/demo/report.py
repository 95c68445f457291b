"""The demo's report: one self-contained HTML page (inline SVG charts, thumbnails as data URIs)."""

from __future__ import annotations

import base64
import re
from html import escape
from pathlib import Path
from typing import Any

from services.demo.charts import grouped_bars, line_chart
from shared.output import MISSING

ABILITIES = ["TXT", "CMP", "VIS", "CG", "FG", "LC", "S", "T", "PR", "AVG_A", "AVG_D"]

CSS = """
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222}
h1{margin-bottom:0} .sub{color:#666;margin-top:4px}
table{border-collapse:collapse;margin:8px 0 18px}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}
th{background:#f4f4f4} td:first-child,th:first-child{text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:16px}
.card{border:1px solid #e3e3e3;border-radius:6px;padding:8px}
.hits{display:flex;gap:8px;flex-wrap:wrap} .hit{width:150px;font-size:12px}
.hit img{width:150px;image-rendering:pixelated} figure.hit{margin:0}
.hit figcaption{font-size:12px;line-height:1.3}
.good{color:#2a7} .bad{color:#c33}
"""


def _fmt(v: Any) -> str:
    return MISSING if v is None else (f"{v:.3f}" if isinstance(v, float) else escape(str(v)))


def wall_time(summary: dict[str, Any]) -> str:
    """This run's wall time, and when it reused stages what their first runs took (a reused run
    is not "0 s")."""
    wall = f"{summary.get('wall_seconds', 0) or 0:.0f} s"
    reused = summary.get("stages_reused") or []
    if not reused:
        return wall
    seconds = summary.get("stage_seconds", {})
    first = sum(seconds.get(k) or 0 for k in reused)
    return (
        f"{wall} ({len(reused)} of {len(seconds)} stages reused, first run took {first:.0f} s; "
        f"all stages {sum(v or 0 for v in seconds.values()):.0f} s)"
    )


def _timings_table(summary: dict[str, Any]) -> str:
    reused = set(summary.get("stages_reused") or [])
    rows = "".join(
        f"<tr><td>{escape(k)}</td><td>"
        + (f"reused, first run took {v:.1f} s" if k in reused else f"{v:.1f} s")
        + "</td></tr>"
        for k, v in summary.get("stage_seconds", {}).items()
    )
    return f"<h2>Stage timings</h2><table>{rows}</table>"


def _thumb(store_root: Path, key: str | None, caption: str = "") -> str:
    if not key:
        return ""
    path = (store_root / key).resolve()
    if store_root.resolve() not in path.parents or not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{escape(caption or "thumbnail")}" src="data:image/jpeg;base64,{data}">'


def _ability_table(abilities: dict[str, dict[str, float | None]]) -> str:
    head = "".join(f"<th>{k}</th>" for k in ABILITIES)
    rows = "".join(
        f"<tr><td>{escape(name)}</td>"
        + "".join(f"<td>{_fmt(vals.get(k))}</td>" for k in ABILITIES)
        + "</tr>"
        for name, vals in abilities.items()
    )
    return f"<table><tr><th>model</th>{head}</tr>{rows}</table>"


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PATH = re.compile(r"'?/[^\s']+'?")


def reason_kind(reason: str) -> str:
    """A rejection reason without the ids and paths that make every row unique (for grouping)."""
    text = _PATH.sub("<file>", _UUID.sub("<clip>", reason))
    prefix = "all clips rejected: "
    lead = prefix if text.startswith(prefix) else ""
    parts = dict.fromkeys(p.strip() for p in text[len(lead) :].split(";"))
    return lead + "; ".join(sorted(parts))


def rejection_counts(synth: dict[str, Any]) -> dict[str, int]:
    """Items rejected or failed during synthesis, counted by kind of reason, most frequent first."""
    reasons: dict[str, int] = {}
    for item in synth.get("items", []):
        reason = item.get("reason") or item.get("error")
        if reason:
            kind = reason_kind(reason)
            reasons[kind] = reasons.get(kind, 0) + 1
    return dict(sorted(reasons.items(), key=lambda kv: -kv[1]))


def _ablation_section(summary: dict[str, Any]) -> str:
    """Pyramid vs uniform over the seeds: mean ± std per ability and whether it beats the noise."""
    abl = summary.get("ablation") or {}
    if not abl:
        return ""
    samplers = [
        k for k in next(iter(abl.values())) if isinstance(next(iter(abl.values()))[k], dict)
    ]
    head = "".join(f"<th>{escape(s)}</th>" for s in samplers)
    rows = "".join(
        f"<tr><td>{escape(k)}</td>"
        + "".join(f"<td>{_fmt(r[s]['mean'])} ± {_fmt(r[s]['std'])}</td>" for s in samplers)
        + (
            f"<td>{_fmt(r.get('p_value'))}</td>"
            f"<td>{'yes' if r.get('significant') else 'no'}</td></tr>"
        )
        for k, r in abl.items()
    )
    return (
        "<h2>Ablation: pyramid vs uniform over seeds"
        f" {escape(str(summary.get('ablation_seeds')))}</h2>"
        "<p>Mean ± std of UVRB-mini scores;"
        " a difference counts only when Welch's t-test gives p &lt; 0.05.</p>"
        f"<table><tr><th>ability</th>{head}<th>p</th><th>beyond seed noise</th></tr>{rows}</table>"
    )


def _synthesis_section(synth: dict[str, Any]) -> str:
    counts = synth.get("counts") or synth.get("states") or {}
    reasons = rejection_counts(synth)
    rows = "".join(
        f"<tr><td>{escape(str(k))}</td><td>{_fmt(v)}</td></tr>" for k, v in counts.items()
    )
    rrows = "".join(f"<tr><td>{escape(k)}</td><td>{v}</td></tr>" for k, v in reasons.items())
    return (
        "<h2>Synthesis</h2><div class='grid'>"
        f"<div><h3>Items by state</h3><table>{rows}</table></div>"
        "<div><h3>Rejections and failures</h3>"
        f"<table><tr><th>reason</th><th>items</th></tr>{rrows}</table></div></div>"
    )


def _training_charts(training: dict[str, Any]) -> str:
    loss = {
        s: [(float(p[0]), float(p[1])) for p in t.get("curve", [])] for s, t in training.items()
    }
    parts = [line_chart(loss, "Training loss", y_label="InfoNCE")]
    probs = training.get("pyramid", {}).get("task_probs", [])
    if probs:
        tasks = sorted({task for row in probs for task in row.get("probs", {})})
        series = {
            task: [(float(row["step"]), float(row["probs"].get(task, 0.0))) for row in probs]
            for task in tasks
        }
        parts.append(line_chart(series, "Modality Pyramid: task probabilities", y_label="P(task)"))
    return (
        "<h2>Training</h2><div class='grid'>"
        + "".join(f"<div class='card'>{p}</div>" for p in parts)
        + "</div>"
    )


def _queries_section(queries: dict[str, Any], store_root: Path) -> str:
    blocks = []
    for q in queries.get("results", []):
        hits = q.get("hits") or []
        if isinstance(hits, dict):
            hits = hits.get("results", [])
        cells = "".join(_hit(h, store_root) for h in hits)
        blocks.append(
            f"<div class='card'><b>{escape(q['kind'])}</b>: {escape(q.get('query', ''))}"
            f"<div class='hits'>{cells}</div></div>"
        )
    return "<h2>Example retrievals (live index)</h2>" + "".join(blocks)


def _hit(h: dict[str, Any], store_root: Path) -> str:
    """One retrieved clip: its thumbnail with the clip's caption under it, then score and time."""
    caption = str(h.get("caption") or "")
    return (
        f"<figure class='hit'>{_thumb(store_root, h.get('thumbnail_key'), caption)}"
        f"<figcaption>{escape(caption) if caption else MISSING}"
        f"<br><small>{_fmt(h.get('score'))} · "
        f"{(h.get('start_ms') or 0) / 1000:.1f}–{(h.get('end_ms') or 0) / 1000:.1f} s"
        "</small></figcaption></figure>"
    )


def write_report(summary: dict[str, Any], path: Path, store_root: Path) -> Path:
    abilities = summary.get("abilities", {})
    datasets = summary.get("datasets", {})
    ds_names = sorted({d for s in datasets.values() for d in s})
    before, after = (
        abilities.get("untrained", {}),
        abilities.get(summary.get("best_sampler", "pyramid"), {}),
    )
    gain = (after.get("AVG_A") or 0) - (before.get("AVG_A") or 0)
    html = f"""<!doctype html><html><head><meta charset="utf-8"><title>univr demo report</title><style>{CSS}</style></head><body>
<h1>univr demo</h1>
<p class="sub">{summary.get("videos_in")} raw videos → {summary.get("snapshot", {}).get("counts", {}) and sum(summary["snapshot"]["counts"].values())} pairs →
tiny GVE trained with the Modality Pyramid and uniform sampling · wall time {escape(wall_time(summary))} ·
AVG-A {_fmt(before.get("AVG_A"))} → {_fmt(after.get("AVG_A"))} (<span class="{"good" if gain > 0 else "bad"}">{gain:+.3f}</span>)</p>
<h2>UVRB-mini abilities</h2>
<div class="card">{grouped_bars(ABILITIES, abilities, "Ability scores: untrained vs trained")}</div>
{_ability_table(abilities)}
<div class="card">{grouped_bars(ds_names, datasets, "Per-dataset scores (metric per SPEC: R@1, R@10 for CMRB/LoVR-TH, P@1 for MS-TI/MS-TV)", width=1000)}</div>
{_ablation_section(summary)}
{_training_charts(summary.get("training", {}))}
{_synthesis_section(summary.get("synthesis", {}))}
<h2>Pairs in the snapshot</h2><table>{"".join(f"<tr><td>{escape(k)}</td><td>{v}</td></tr>" for k, v in summary.get("snapshot", {}).get("counts", {}).items())}</table>
<h2>Live index</h2><p>{escape(str(summary.get("index", {}).get("version")))} ({_fmt(summary.get("index", {}).get("points"))} points, trained with {escape(str(summary.get("best_sampler")))} sampling)</p>
{_queries_section(summary.get("queries", {}), store_root)}
{_timings_table(summary)}
</body></html>"""  # noqa: E501 (a template: its lines are the output's)
    path.write_text(html, encoding="utf-8")
    return path
