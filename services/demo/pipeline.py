"""The demo's main job: the whole univr loop on the embedded default, stage by stage.

raw corpus → synthesis (real worker processes) → snapshot → the epoch-1 prober (trained on other
videos: services/demo/prober.py) → UVRB-mini → untrained score → training (pyramid and uniform,
``seeds`` each: the ablation) → scores → index + promotion → queries → report.

Size: the loop's stages read top to bottom in one file; the next split moves the training and
scoring stages into services/demo/training.py.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.demo.prober import STAGE as PROBER_STAGE
from services.demo.prober import train_prober
from services.demo.stages import StageRunner
from shared.stats import ablation

ABILITY_KEYS = ["TXT", "CMP", "VIS", "CG", "FG", "LC", "S", "T", "PR", "AVG_A", "AVG_D"]
SAMPLERS = ("pyramid", "uniform")


@dataclass
class DemoOptions:
    out: Path
    videos: int = 160
    long_videos: int = 4
    seed: int = 7
    steps: int = 300
    batch_size: int = 16
    workers: int = 2
    uvrb_size: int = 32
    seeds: int = 2  # per sampler (seed, seed+1, ...): the ablation's mean ± std and significance
    prober_videos: int = 96  # world videos the epoch-1 prober trains on (services/demo/prober.py)
    prober_steps: int = 120  # its training steps; 0: no prober (the model being trained probes)
    fresh: bool = False
    stack: bool = (
        False  # use the running stack from the environment instead of the embedded default
    )


def demo_env(opts: DemoOptions) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not opts.stack:
        env["UNIVR_PROFILE"] = "embedded"
        env["UNIVR_HOME"] = str(opts.out / "home")
    return env


def run_demo(opts: DemoOptions, runner: StageRunner | None = None) -> dict[str, Any]:
    out = opts.out
    if opts.fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    runner = runner or StageRunner(out=out, env=demo_env(opts))
    t0 = time.perf_counter()
    raw = out / "raw"
    uvrb = out / "uvrb"

    gen = runner.stage("generate", lambda: _generate(runner, raw, opts))
    synth = runner.stage("synthesis", lambda: _synthesis(runner, raw, opts))
    snap = runner.stage("snapshot", lambda: _snapshot(runner))
    model = runner.stage("model", lambda: _model(runner, out, opts))
    prober = runner.stage(PROBER_STAGE, lambda: _prober(runner, model["path"], opts))
    runner.stage("uvrb", lambda: _uvrb(runner, uvrb, opts))
    scores: dict[str, Any] = {
        "untrained": runner.stage(
            "eval-untrained",
            lambda: _evaluate(runner, "eval-untrained", uvrb, model["path"], None, out),
        )
    }
    trained, runs = _train_and_score(runner, opts, snap, model["path"], prober, scores)
    best = max(SAMPLERS, key=lambda s: scores[s]["abilities"]["AVG_A"])
    index = runner.stage(
        "index", lambda: _index(runner, model["path"], trained[best]["adapter"], scores[best], best)
    )
    queries = runner.stage("queries", lambda: _queries(runner, raw))
    summary = {
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "stage_seconds": {k: round(v, 1) for k, v in runner.timings.items()},
        "stages_reused": runner.reused,
        "videos_in": gen["videos"],
        "synthesis": synth,
        "snapshot": snap,
        "prober": {k: v for k, v in prober.items() if not k.startswith("_")},
        **_results(scores, trained, runs, opts),
        "best_sampler": best,
        "index": index,
        "queries": queries,
    }
    _write(summary, out)
    return summary


def _write(summary: dict[str, Any], out: Path) -> None:
    """summary.json and report.html."""
    from services.demo.report import write_report

    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    write_report(summary, out / "report.html", store_root=out / "home" / "objects")


def _synthesis(runner: StageRunner, raw: Path, opts: DemoOptions) -> dict[str, Any]:
    args = ["synth", "run", str(raw / "manifest.jsonl"), "--json", "--workers", str(opts.workers)]
    return runner.univr("synthesis", args, json_out=True)


def _snapshot(runner: StageRunner) -> dict[str, Any]:
    return runner.univr("snapshot", ["data", "snapshot", "--name", "demo", "--json"], json_out=True)


def _model(runner: StageRunner, out: Path, opts: DemoOptions) -> dict[str, Any]:
    path = out / "home" / "models" / "tiny"
    runner.univr("model", ["model", "tiny", "--out", str(path), "--seed", str(opts.seed)])
    return {"path": str(path)}


def _prober(runner: StageRunner, model: str, opts: DemoOptions) -> dict[str, Any]:
    return train_prober(
        runner,
        opts.out,
        model,
        seed=opts.seed,
        videos=opts.prober_videos,
        steps=opts.prober_steps,
        batch_size=opts.batch_size,
    )


def _train_and_score(
    runner: StageRunner,
    opts: DemoOptions,
    snap: dict[str, Any],
    model: str,
    prober: dict[str, Any],
    scores: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Each sampler for each seed: train, score on UVRB-mini. The first seed's runs keep the plain
    names (``train-pyramid``) and fill ``scores``; returns (first seed's runs, scores per seed)."""
    trained: dict[str, Any] = {}
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in SAMPLERS}
    for sampler in SAMPLERS:
        for seed in _seeds(opts):
            tag = sampler if seed == opts.seed else f"{sampler}-s{seed}"

            def train(s: str = sampler, sd: int = seed) -> dict[str, Any]:
                return _train(runner, s, snap, model, opts, sd, prober)

            run = runner.stage(f"train-{tag}", train)

            def evaluate(t: str = tag, r: dict[str, Any] = run) -> dict[str, Any]:
                return _evaluate(
                    runner, f"eval-{t}", opts.out / "uvrb", model, r["adapter"], opts.out
                )

            score = runner.stage(f"eval-{tag}", evaluate)
            runs[sampler].append(score)
            if seed == opts.seed:
                trained[sampler], scores[sampler] = run, score
    return trained, runs


def _seeds(opts: DemoOptions) -> list[int]:
    return list(range(opts.seed, opts.seed + max(opts.seeds, 1)))


def _results(
    scores: dict[str, Any],
    trained: dict[str, Any],
    runs: dict[str, list[dict[str, Any]]],
    opts: DemoOptions,
) -> dict[str, Any]:
    """summary.json's scores: abilities and datasets per model, training runs, the ablation."""
    kept = ("steps", "wall_seconds", "curve", "task_probs", "adapter", "final_loss")
    return {
        "abilities": {
            name: {k: s["abilities"].get(k) for k in ABILITY_KEYS} for name, s in scores.items()
        },
        "datasets": {
            name: {ds: v.get("score") for ds, v in s.get("datasets", {}).items()}
            for name, s in scores.items()
        },
        "training": {s: {k: v for k, v in trained[s].items() if k in kept} for s in SAMPLERS},
        "ablation_seeds": _seeds(opts),
        "ablation": ablation_summary(runs),
    }


def _generate(runner: StageRunner, raw: Path, opts: DemoOptions) -> dict[str, Any]:
    if raw.exists():
        shutil.rmtree(raw)
    runner.univr(
        "generate",
        [
            "media",
            "generate",
            "--out",
            str(raw),
            "--videos",
            str(opts.videos),
            "--seed",
            str(opts.seed),
            "--long",
            str(opts.long_videos),
            "--failures",
        ],
    )
    rows = [
        json.loads(line)
        for line in (raw / "manifest.jsonl").read_text().splitlines()
        if line.strip()
    ]
    failures: dict[str, int] = {}
    for row in rows:
        if row.get("failure"):
            failures[row["failure"]] = failures.get(row["failure"], 0) + 1
    return {"videos": len(rows), "failures_planted": failures}


def _uvrb(runner: StageRunner, uvrb: Path, opts: DemoOptions) -> dict[str, Any]:
    if uvrb.exists():
        shutil.rmtree(uvrb)
    runner.univr(
        "uvrb",
        [
            "uvrb",
            "mini",
            "--out",
            str(uvrb),
            "--seed",
            str(opts.seed + 100_000),
            "--n",
            str(opts.uvrb_size),
            "--long-n",
            str(max(3, opts.uvrb_size // 4)),
        ],
    )
    return {"path": str(uvrb)}


def _evaluate(
    runner: StageRunner, stage: str, uvrb: Path, model: str, adapter: str | None, out: Path
) -> dict[str, Any]:
    result_path = out / "eval" / f"{stage}.json"
    result_path.parent.mkdir(parents=True, exist_ok=True)
    args = ["eval", "run", "--uvrb", str(uvrb), "--model", model, "--out", str(result_path)]
    if adapter:
        args += ["--adapter", adapter]
    runner.univr(stage, args)
    return json.loads(result_path.read_text())


def ablation_summary(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per ability: ``{pyramid: {mean, std, seeds}, uniform: {...}, significant, p_value}`` over
    the seeds' UVRB-mini scores (shared/stats.py: Welch's t-test), as measured."""
    return {
        k: ablation({s: [r["abilities"].get(k) for r in rs] for s, rs in runs.items()})
        for k in ABILITY_KEYS
    }


def _train(
    runner: StageRunner,
    sampler: str,
    snap: dict[str, Any],
    model: str,
    opts: DemoOptions,
    seed: int,
    prober: dict[str, Any],
) -> dict[str, Any]:
    tag = sampler if seed == opts.seed else f"{sampler}-s{seed}"
    run_dir = opts.out / "train" / tag
    args = [
        "train",
        "run",
        "--snapshot",
        snap["id"],
        "--model",
        model,
        "--sampler",
        sampler,
        "--steps",
        str(opts.steps),
        "--batch-size",
        str(opts.batch_size),
        "--seed",
        str(seed),
        "--out",
        str(run_dir),
        "--preset",
        "tiny",
        "--json",
    ]
    if prober.get("path"):
        args += ["--prober", prober["path"]]
    return runner.univr(f"train-{tag}", args, json_out=True)  # each seed's own log


def _index(
    runner: StageRunner, model: str, adapter: str, score: dict[str, Any], sampler: str
) -> dict[str, Any]:
    built = runner.univr(
        "index", ["index", "build", "--model", model, "--adapter", adapter, "--json"], json_out=True
    )
    version = built["version"]
    promoted = runner.univr(
        "index",
        ["index", "promote", version, "--avg-a", str(score["abilities"]["AVG_A"]), "--json"],
        json_out=True,
    )
    return {
        "version": version,
        "sampler": sampler,
        "points": built.get("points"),
        "promotion": promoted,
    }


def _queries(runner: StageRunner, raw: Path) -> dict[str, Any]:
    """A few queries of each kind, answered by one `univr search --queries` (one model load)."""
    rows = [
        json.loads(line)
        for line in (raw / "manifest.jsonl").read_text().splitlines()
        if line.strip()
    ]
    good = [r for r in rows if not r.get("failure")]
    sample_video = str(raw / good[0]["path"]) if good else None
    queries: list[tuple[str, dict[str, str]]] = [
        ("text", {"text": "a red circle moving right"}),
        ("text", {"text": "a blue square appears, then a green triangle moves left"}),
    ]
    if sample_video:
        queries.append(("video", {"video": sample_video}))
        queries.append(("text+video", {"text": "what happens next", "video": sample_video}))
    path = runner.out / "queries.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for _, q in queries))
    answers = runner.univr(
        "queries", ["search", "--queries", str(path), "--top-k", "3", "--json"], json_out=True
    )
    results = [
        {"kind": kind, "query": " ".join(q.values()), "hits": answer["hits"]}
        for (kind, q), answer in zip(queries, answers, strict=True)
    ]
    return {"results": results}
