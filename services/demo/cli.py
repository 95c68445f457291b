"""`univr demo`: run the whole loop on the embedded default and show what it did."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from services.demo.pipeline import ABILITY_KEYS, SAMPLERS, DemoOptions, demo_env, run_demo
from services.demo.report import rejection_counts, wall_time
from services.demo.stages import StageError, StageRunner
from shared.output import json_option, show

console = Console(width=max(Console().width, 150))


def demo(
    out: Path = typer.Option(Path("demo-out"), help="Folder for the corpus, the home, the report."),
    videos: int = typer.Option(
        160, help="Raw short videos to generate (plus broken ones on purpose)."
    ),
    long_videos: int = typer.Option(4, "--long", help="Long multi-shot videos among them."),
    steps: int = typer.Option(300, help="Training steps per sampler (pyramid and uniform)."),
    batch_size: int = typer.Option(16, help="Training batch size."),
    workers: int = typer.Option(2, help="Synthesis worker processes."),
    seed: int = typer.Option(7, help="Seed of the generated world and the runs."),
    uvrb_size: int = typer.Option(32, help="Corpus size of each UVRB-mini dataset."),
    seeds: int = typer.Option(2, help="Seeds per sampler for the pyramid vs uniform ablation."),
    prober_steps: int = typer.Option(
        120, min=0, help="Steps of the epoch-1 prober's training on other videos (0: no prober)."
    ),
    prober_videos: int = typer.Option(
        96, min=2, help="Procedural videos the prober trains on (disjoint from the demo's)."
    ),
    fresh: bool = typer.Option(False, help="Start clean instead of reusing finished stages."),
    stack: bool = typer.Option(
        False,
        help="Use the stack configured in the environment (UNIVR_PROFILE=stack) instead of the "
        "embedded default.",
    ),
    json_out: bool = json_option(
        "Print the demo's summary (summary.json) as JSON on stdout; stage lines go to stderr."
    ),
) -> None:
    """Generate videos → synthesize pairs → train the tiny GVE → evaluate on UVRB-mini → index →
    search."""
    opts = DemoOptions(
        out=out.resolve(),
        videos=videos,
        long_videos=long_videos,
        seed=seed,
        steps=steps,
        batch_size=batch_size,
        workers=workers,
        uvrb_size=uvrb_size,
        seeds=seeds,
        prober_steps=prober_steps,
        prober_videos=prober_videos,
        fresh=fresh,
        stack=stack,
    )
    if json_out:
        lines = Console(stderr=True, width=console.width)
        show(_run(opts, lines), json_out=True, indent=2)
    else:
        print_summary(_run(opts, console), opts.out)


def _run(opts: DemoOptions, console: Console) -> dict:
    """Run the demo with a live status line and one line per finished stage on ``console``."""
    status = console.status("starting")
    status.start()

    def started(name: str) -> None:
        status.update(f"[bold]{name}[/] … (log: {opts.out / 'logs' / (name + '.log')})")

    def done(name: str, secs: float, cached: bool) -> None:
        took = f"(reused, first run took {secs:.1f} s)" if cached else f"{secs:6.1f} s"
        console.print(f"  [green]✓[/] {name:<16} {took}")

    runner = StageRunner(out=opts.out, env=demo_env(opts), on_start=started, on_done=done)
    try:
        return run_demo(opts, runner)
    except StageError as exc:
        console.print(f"[red]demo failed[/]: {exc}")
        raise typer.Exit(1) from exc
    finally:
        status.stop()


def print_ablation(summary: dict) -> None:
    """Pyramid vs uniform over the seeds, per ability: mean ± std and whether it beats the noise."""
    abl = summary.get("ablation") or {}
    if not abl:
        return
    t = Table(title=f"ablation over seeds {summary.get('ablation_seeds')} (Welch t-test, p < 0.05)")
    for col in ("ability", *SAMPLERS, "p", "beyond seed noise"):
        t.add_column(col, justify="right")
    for k, row in abl.items():
        cells = [f"{row[s]['mean']:.3f} ± {row[s]['std']:.3f}" for s in SAMPLERS]
        p = "–" if row.get("p_value") is None else f"{row['p_value']:.3f}"
        t.add_row(k, *cells, p, "yes" if row.get("significant") else "no")
    console.print(t)


def print_summary(summary: dict, out: Path) -> None:
    synth = summary.get("synthesis", {})
    t = Table(title="univr demo", show_header=False)
    t.add_row("videos in", str(summary.get("videos_in")))
    for k, v in (synth.get("counts") or {}).items():
        t.add_row(f"items {k}", str(v))
    for k in ("clips", "frames", "pairs"):
        if k in synth:
            t.add_row(k, str(synth[k]))
    for task, n in summary.get("snapshot", {}).get("counts", {}).items():
        t.add_row(f"pairs {task}", str(n))
    for reason, n in list(rejection_counts(synth).items())[:8]:
        t.add_row("rejected", f"{n} × {reason[:80]}")
    prober = summary.get("prober") or {}
    if prober.get("path"):
        r1 = [prober.get(f"heldout_t2v_r1_{w}") or 0.0 for w in ("before", "after")]
        t.add_row(
            "epoch-1 prober",
            f"{prober.get('steps')} steps on {prober.get('videos')} other videos, "
            f"held-out t2v R@1 {r1[0]:.3f} → {r1[1]:.3f}",
        )
    for sampler, tr in summary.get("training", {}).items():
        t.add_row(f"training {sampler}", f"{tr.get('steps')} steps, {tr.get('wall_seconds')} s")
    idx = summary.get("index", {})
    t.add_row("live index", f"{idx.get('version')} ({idx.get('points')} points)")
    t.add_row("wall time", wall_time(summary))
    console.print(t)

    a = Table(title="UVRB-mini abilities")
    a.add_column("model")
    for k in ABILITY_KEYS:
        a.add_column(k, justify="right")
    for name, vals in summary.get("abilities", {}).items():
        a.add_row(name, *[("–" if vals.get(k) is None else f"{vals[k]:.3f}") for k in ABILITY_KEYS])
    console.print(a)
    print_ablation(summary)

    for q in summary.get("queries", {}).get("results", []):
        hits = q.get("hits") or []
        hits = hits.get("results", []) if isinstance(hits, dict) else hits
        console.print(f"[bold]{q['kind']}[/] {q.get('query', '')!r}")
        for h in hits[:3]:
            span = f"{h.get('start_ms', 0) / 1000:.1f}–{h.get('end_ms', 0) / 1000:.1f} s"
            caption = json.dumps(h.get("caption", ""))[:70]
            console.print(f"    {h.get('score', 0):.3f}  {h.get('video', '')}  {span}  {caption}")
    console.print(f"report: {out / 'report.html'}   summary: {out / 'summary.json'}")
