"""Scoring an embedder on UVRB (SPEC §1.4): per-dataset instructions on queries, candidates
without, 8 uniform frames, cosine, exact top-k; the dataset metric plus R@1/5/10, MRR, nDCG@10;
the 9 abilities and both averages.

Results JSON::

    {"model": str, "adapter": str|null, "model_id": str, "benchmark": str, "wall_seconds": float,
     "datasets": {short: {"metric": "R@1"|"R@10"|"P@1", "score": float, "R@1", "R@5", "R@10", "P@1",
                          "MRR", "nDCG@10", "n_queries": int, "n_corpus": int, "cached": int}},
     "abilities": {"TXT", "CMP", "VIS", "CG", "FG", "LC", "S", "T", "PR", "AVG_A", "AVG_D"}}
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from services.evaluator.aggregate import aggregate
from services.evaluator.cache import EmbeddingCache
from services.evaluator.layout import LoadedDataset, load_dataset
from services.evaluator.metrics import evaluate_run
from services.evaluator.registry import DATASETS, get
from services.evaluator.topk import blocked_topk
from shared.config import get_settings
from shared.model import Embedder, EmbedInput, item_key
from shared.progress import ProgressReport


def _embed_cached(embedder: Embedder, cache: EmbeddingCache, items: list[EmbedInput]) -> np.ndarray:
    keys = [item_key(it) for it in items]
    missing = [i for i, k in enumerate(keys) if cache.get(k) is None]
    if missing:
        vecs = embedder.embed([items[i] for i in missing])
        cache.put_many([keys[i] for i in missing], vecs)
    return np.stack([cache.items[k] for k in keys])


def _query_input(q: dict[str, Any], instruction: str) -> EmbedInput:
    return EmbedInput(
        text=q.get("text"),
        image=q.get("_image_path"),
        video=q.get("_video_path"),
        instruction=instruction,
    )


def score_dataset(embedder: Embedder, ds: LoadedDataset, cache_root: str) -> dict[str, Any]:
    spec = get(ds.name)
    cache = EmbeddingCache(cache_root, embedder.model_id, ds.name)
    corpus_vecs = _embed_cached(embedder, cache, [EmbedInput(video=c["_path"]) for c in ds.corpus])
    query_vecs = _embed_cached(
        embedder, cache, [_query_input(q, spec.instruction) for q in ds.queries]
    )
    cache.save()
    cids = [str(c["id"]) for c in ds.corpus]
    run: dict[str, dict[str, float]] = {}
    if ds.candidates:  # per-query candidate sets (MomentSeeker): rank only those
        index = {c: i for i, c in enumerate(cids)}
        for q, qv in zip(ds.queries, query_vecs, strict=True):
            cand = ds.candidates.get(str(q["id"]), cids)
            sims = corpus_vecs[[index[c] for c in cand]] @ qv
            run[str(q["id"])] = {c: float(s) for c, s in zip(cand, sims, strict=True)}
    else:
        k = max(10, get_settings().eval.topk)
        scores, idx = blocked_topk(query_vecs, corpus_vecs, k)
        for q, srow, irow in zip(ds.queries, scores, idx, strict=True):
            run[str(q["id"])] = {cids[i]: float(s) for s, i in zip(srow, irow, strict=True)}
    metrics = evaluate_run(run, ds.qrels)
    return {
        "metric": spec.metric,
        "score": metrics[spec.metric],
        **metrics,
        "n_queries": len(ds.queries),
        "n_corpus": len(ds.corpus),
        "cached": cache.hits,
    }


class Progress(Protocol):
    """Told as each dataset starts, ends (its scores) or fails (the exception, then raised)."""

    def started(self, name: str) -> None: ...
    def done(self, name: str, scores: dict[str, Any]) -> None: ...
    def failed(self, name: str, exc: BaseException) -> None: ...


def dataset_names(datasets: list[str] | None = None) -> list[str]:
    """The short names to score (default: all 16, in the registry's order); KeyError names an
    unknown one."""
    return [get(name).short for name in datasets] if datasets else [d.short for d in DATASETS]


def _score_one(
    embedder: Embedder,
    root: Path,
    name: str,
    console: ProgressReport,
    progress: Progress | None,
) -> dict[str, Any]:
    """One dataset's scores, told to the console and to ``progress`` (started, done or failed)."""
    console.update(dataset=name)
    if progress:
        progress.started(name)
    t_ds = time.perf_counter()
    try:
        r = score_dataset(embedder, load_dataset(root, name), get_settings().eval.cache_dir)
    except Exception as exc:
        if progress:
            progress.failed(name, exc)
        raise
    items = r["n_queries"] + r["n_corpus"]
    console.advance(
        dataset=name,
        score=round(r["score"], 4),
        items_per_s=round(items / max(time.perf_counter() - t_ds, 1e-9), 1),
    )
    if progress:
        progress.done(name, r)
    return r


def evaluate(
    uvrb_dir: str | Path,
    model: str | None = None,
    adapter: str | None = None,
    datasets: list[str] | None = None,
    out: str | Path | None = None,
    embedder: Embedder | None = None,
    record: bool = True,
    progress: Progress | None = None,
    done: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Score ``datasets`` in order; ``done``: scores an earlier, interrupted run already has
    (short name → its scores), taken as they are: those datasets are not loaded or embedded."""
    t0 = time.perf_counter()
    root = Path(uvrb_dir)
    names = dataset_names(datasets)
    embedder = embedder or Embedder(model, adapter)
    results = {}
    with ProgressReport("eval", total=len(names), unit="dataset") as console:
        for name in names:
            if done and name in done:
                results[name] = done[name]
                console.advance(dataset=name, score=round(done[name]["score"], 4))
                continue
            results[name] = _score_one(embedder, root, name, console, progress)
    report = {
        "model": str(model or embedder.name_or_path),
        "adapter": adapter,
        "model_id": embedder.model_id,
        "benchmark": str(root),
        "datasets": results,
        "abilities": aggregate({k: v["score"] for k, v in results.items()}),
        "wall_seconds": round(time.perf_counter() - t0, 2),
    }
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(report, indent=1))
    if record:
        from services.evaluator.records import record_eval

        report["eval_run_id"] = record_eval(report)
        if out:
            Path(out).write_text(json.dumps(report, indent=1))
    return report
