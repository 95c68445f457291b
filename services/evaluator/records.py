"""Evaluation results in the database (EvalRun + one EvalScore per dataset)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from shared.db import init_db, session_scope, upsert
from shared.db.models import EvalRun, EvalScore
from shared.ids import stable_id


def record_eval(report: dict[str, Any], checkpoint_id: str | None = None) -> str:
    init_db()
    run_id = stable_id("eval", report["model_id"], report["benchmark"], sorted(report["datasets"]))
    with session_scope() as s:
        upsert(
            s,
            EvalRun,
            [
                {
                    "id": run_id,
                    "model": report["model"],
                    "adapter": report.get("adapter"),
                    "checkpoint_id": checkpoint_id,
                    "benchmark": report["benchmark"],
                    "abilities": report["abilities"],
                    "state": "done",
                }
            ],
        )
        upsert(
            s,
            EvalScore,
            [
                {
                    "eval_run_id": run_id,
                    "dataset": k,
                    "metric": v["metric"],
                    "score": v["score"],
                    "details": {m: v[m] for m in ("R@1", "R@5", "R@10", "P@1", "MRR", "nDCG@10")},
                }
                for k, v in report["datasets"].items()
            ],
            key=("eval_run_id", "dataset"),
        )
    return run_id


def earlier_runs(limit: int = 10) -> list[dict[str, Any]]:
    init_db()
    with session_scope() as s:
        rows = s.scalars(select(EvalRun).order_by(EvalRun.created_at.desc()).limit(limit)).all()
        return [
            {
                "id": r.id,
                "model": r.model,
                "adapter": r.adapter,
                "abilities": r.abilities,
                "created_at": r.created_at.isoformat(),
            }
            for r in rows
        ]
