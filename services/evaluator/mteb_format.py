"""UVRB results in the MTEB results layout, the field's leaderboard format:
``<dir>/<model name, "/" → "__">/<revision>/<task>.json`` per dataset, plus ``model_meta.json``.
Each task file holds ``scores.test[0]`` with ``main_score`` (the dataset's UVRB metric: R@1, R@10
or P@1) and the other retrieval metrics under MTEB's names (``recall_at_1``, ``ndcg_at_10``, …)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from services.evaluator.registry import get

TASK_PREFIX = "UVRB-"
# our metric name → MTEB's
METRIC_NAMES = {
    "R@1": "recall_at_1",
    "R@5": "recall_at_5",
    "R@10": "recall_at_10",
    "P@1": "precision_at_1",
    "MRR": "mrr_at_10",
    "nDCG@10": "ndcg_at_10",
}


def _model_dir(report: dict[str, Any]) -> tuple[str, str]:
    """(folder name, revision): a hub id "org/name" → "org__name"; a local path → its last part;
    the revision is univr's model id (weights + adapter + input settings)."""
    model = str(report.get("model") or "model")
    local = model.startswith(("/", ".", "~")) or Path(model).exists()
    name = Path(model).name if local else model
    return name.replace("/", "__"), str(report.get("model_id") or "no_revision_available")


def write_mteb(report: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Write one MTEB task result per scored dataset (and the model's meta); returns the paths."""
    model, revision = _model_dir(report)
    folder = Path(out_dir) / model / revision
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for short, scores in (report.get("datasets") or {}).items():
        spec = get(short)
        test = {"main_score": scores["score"], "hf_subset": "default", "languages": ["eng-Latn"]}
        test.update({mteb: scores[ours] for ours, mteb in METRIC_NAMES.items() if ours in scores})
        task = {
            "dataset_revision": "uvrb",
            "task_name": TASK_PREFIX + short,
            "mteb_version": None,
            "scores": {"test": [test]},
            "evaluation_time": report.get("wall_seconds"),
            "kg_co2_emissions": None,
            "uvrb": {
                "metric": spec.metric,
                "task": spec.task,
                "domains": list(spec.domains),
                "n_queries": scores.get("n_queries"),
                "n_corpus": scores.get("n_corpus"),
            },
        }
        path = folder / f"{TASK_PREFIX}{short}.json"
        path.write_text(json.dumps(task, indent=1))
        written.append(path)
    meta = {
        "name": model.replace("__", "/"),
        "revision": revision,
        "adapter": report.get("adapter"),
        "framework": ["univr"],
        "uvrb_abilities": report.get("abilities"),
    }
    (folder / "model_meta.json").write_text(json.dumps(meta, indent=1))
    return written
