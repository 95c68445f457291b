"""``POST /v1/jobs/{kind}`` (a job for any service, sent to the broker by task name) and
``GET /v1/jobs/{id}`` (its state, items by state and progress, both from the job's counters,
and its result)."""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from services.api.deps import parse_uuid, require
from shared.config import get_settings
from shared.db import counters, session_scope
from shared.db.jobs import job_progress
from shared.db.models import Job, JobState

JOB_TASKS = {
    "synth": "synth.io_submit",
    "train": "trainer.run",
    "eval": "evaluator.run",
    "index": "indexer.build_and_promote",
}

router = APIRouter()


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    params: dict[str, Any] = Field(default_factory=dict)


def _validated(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """The params as the kind's contract reads them (422 with the reasons, never the input)."""
    from pydantic import ValidationError

    from shared.contracts.jobs import validate_params

    limit = get_settings().api.max_job_params_bytes
    if len(json.dumps(params, ensure_ascii=True)) > limit:
        raise HTTPException(413, f"params larger than {limit} bytes")
    try:
        return validate_params(kind, params)
    except ValidationError as exc:
        reasons = [
            "{}: {}".format(".".join(str(p) for p in e["loc"])[:60], e["msg"][:120])
            for e in exc.errors()[:5]
        ]
        raise HTTPException(422, {"params": reasons}) from None


@router.post("/v1/jobs/{kind}")
def submit_job(
    kind: Literal["synth", "train", "eval", "index"],
    req: JobRequest,
    _: list[str] = Depends(require("jobs")),
) -> dict[str, Any]:
    from shared.queue import get_celery, route_for

    params = _validated(kind, req.params)
    job_id = str(uuid.uuid4())
    with session_scope() as s:
        s.add(Job(id=job_id, kind=kind, state=JobState.pending, params=params))
    name = JOB_TASKS[kind]
    try:
        get_celery().send_task(name, args=[job_id, params], queue=route_for(name))
    except Exception as exc:  # noqa: BLE001 - broker down: the job row says so
        with session_scope() as s:
            job = s.get_one(Job, job_id)
            job.state, job.error = JobState.failed, f"broker unavailable: {exc}"[:500]
        raise HTTPException(503, "broker unavailable; the job was recorded as failed") from None
    return {"job": job_id, "kind": kind, "task": name}


@router.get("/v1/jobs/{job_id}")
def job_route(job_id: str, _: list[str] = Depends(require("jobs"))) -> dict[str, Any]:
    jid = parse_uuid(job_id, "job id")  # every job id is a UUID (uuid4 here, uuid5 from the CLIs)
    with session_scope() as s:
        job = s.get(Job, jid)
        if job is None:
            raise HTTPException(404, "no such job")
        counts = counters.job_counts(s, job.id)  # the job's counters: a few rows, never its items
        return {
            "id": job.id,
            "kind": job.kind,
            "state": job.state.value,
            "error": job.error,
            "params": job.params,
            "items": counts,
            "progress": job_progress(s, job.id),
            "result": job.result,
            "updated_at": job.updated_at.isoformat() if job.updated_at else None,
        }
