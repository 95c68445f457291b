"""An evaluation as a job a user follows: its Job row moves pending → running → completed (its
result: the eval run id, AVG-A and AVG-D, the results file) | failed (the error, naming the dataset
that failed), with one item per UVRB dataset for progress (datasets done / total), the same way the
indexer's jobs move (``shared.db.jobs``). Used by API jobs (``evaluator.run``), evaluations of new
checkpoints (``evaluator.on_checkpoint_ready``) and ``univr eval run``.

A dataset's item keeps its full scores when it is done, so a run of a job that an earlier attempt
left running (a takeover after its worker died) resumes at the first unscored dataset: the finished
ones are neither embedded nor scored again (not even from the embedding cache), their stored scores
go into the report, and the resume point is recorded on the job (``progress.resumed`` and a
``resumed`` line of its timeline)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.config import get_settings
from shared.db import init_db, session_scope
from shared.db.jobs import describe_error, open_items, set_item_state, set_job_state
from shared.db.lease import report_progress, report_resume
from shared.db.models import ItemState, Job, JobItem, JobState
from shared.storage import checkpoint_adapter

if TYPE_CHECKING:
    from shared.model import Embedder

KIND = "eval"
STAGE = "score"


class JobProgress:
    """Moves the item of each dataset as ``evaluate`` reports it."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.failed_dataset: str | None = None

    def started(self, name: str) -> None:
        set_item_state(self.job_id, name, ItemState.running, stage=STAGE)
        report_progress(dataset=name)

    def done(self, name: str, scores: dict[str, Any]) -> None:
        finite = all(
            not isinstance(v, float) or math.isfinite(v) for v in scores.values()
        )  # PostgreSQL's JSON refuses NaN: such a dataset is scored again on a resume
        set_item_state(
            self.job_id,
            name,
            ItemState.done,
            stage=STAGE,
            result={
                "metric": scores["metric"],
                "score": scores["score"],
                **({"scores": scores} if finite else {}),
            },
        )

    def failed(self, name: str, exc: BaseException) -> None:
        self.failed_dataset = name
        set_item_state(self.job_id, name, ItemState.failed, stage=STAGE, error=describe_error(exc))


def _datasets(value: Any) -> list[str] | None:
    """``params["datasets"]``: a list of short names or one comma-separated string; empty: all."""
    if value is None or value == "":
        return None
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(
            "datasets must be a list of UVRB short names or a comma-separated string"
            f", got {value!r}"
        )
    return [n.strip() for n in names if n.strip()] or None


def left_running(job_id: str) -> bool:
    """Whether an earlier run of this job never ended (its worker died): its row says running."""
    init_db()
    with session_scope() as s:
        job = s.get(Job, job_id)
        return job is not None and job.state == JobState.running


def finished_datasets(job_id: str, names: list[str]) -> dict[str, dict[str, Any]]:
    """The datasets of ``names`` an earlier run of this job scored, with their stored scores."""
    with session_scope() as s:
        items = s.query(JobItem).filter(JobItem.job_id == job_id, JobItem.state == ItemState.done)
        stored = {it.item_key: (it.result or {}).get("scores") for it in items}
    return {n: scores for n in names if (scores := stored.get(n))}


def job_result(report: dict[str, Any], out: str | Path | None = None) -> dict[str, Any]:
    """What a finished eval job shows: where its scores are, and the two averages."""
    abilities = report.get("abilities") or {}
    return {
        "eval_run_id": report.get("eval_run_id"),
        "AVG_A": abilities.get("AVG_A"),
        "AVG_D": abilities.get("AVG_D"),
        "model": report.get("model"),
        "adapter": report.get("adapter"),
        "model_id": report.get("model_id"),
        "benchmark": report.get("benchmark"),
        "datasets": len(report.get("datasets") or {}),
        "out": str(out) if out else None,
        "wall_seconds": report.get("wall_seconds"),
    }


def run_eval_job(
    job_id: str,
    params: dict[str, Any],
    *,
    out: str | Path | None = None,
    embedder: Embedder | None = None,
) -> dict[str, Any]:
    """Score ``params`` (uvrb, model, adapter or checkpoint, datasets) and move the job's row;
    returns the full report (also recorded as an EvalRun). Without an adapter, a ``checkpoint``
    (store prefix) is scored with its adapter, fetched from the store. Errors are recorded on the
    row, then
    raised."""
    from services.evaluator.runner import dataset_names, evaluate

    interrupted = left_running(job_id)
    set_job_state(job_id, JobState.running, kind=KIND, params=params)
    progress = JobProgress(job_id)
    try:
        uvrb = params.get("uvrb") or str(get_settings().home_path / "uvrb-mini")
        names = dataset_names(_datasets(params.get("datasets")))
        if not Path(uvrb).is_dir():
            raise FileNotFoundError(f"no UVRB copy at {uvrb}")
        adapter = params.get("adapter") or None
        if adapter is None and params.get(
            "checkpoint"
        ):  # a checkpoint.ready event names the store prefix
            adapter = str(checkpoint_adapter(params["checkpoint"]))
        resumed = finished_datasets(job_id, names) if interrupted else {}
        open_items(job_id, [n for n in names if n not in resumed])
        if resumed:
            first = next((n for n in names if n not in resumed), None)
            report_resume(dataset=first, skipped=[n for n in names if n in resumed])
        report = evaluate(
            uvrb,
            params.get("model") or None,
            adapter,
            names,
            out,
            embedder=embedder,
            progress=progress,
            done=resumed,
        )
    except Exception as exc:
        where = f"dataset {progress.failed_dataset}: " if progress.failed_dataset else ""
        set_job_state(job_id, JobState.failed, kind=KIND, error=where + describe_error(exc))
        raise
    set_job_state(job_id, JobState.completed, kind=KIND, result=job_result(report, out))
    return report


def eval_job(job_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """An evaluation as a supervised run (``shared.supervise``): the job's result plus the
    abilities the ``eval.completed`` event carries."""
    report = run_eval_job(job_id, params)
    return {**job_result(report), "abilities": report["abilities"]}
