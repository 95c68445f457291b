"""``POST /v1/jobs/{kind}`` (a job for any service, sent to the broker by task name) and
``GET /v1/jobs/{id}`` (its state, items, progress and result)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from services.api.deps import parse_uuid, require
from shared.db import session_scope
from shared.db.jobs import job_progress
from shared.db.models import Job, JobItem, JobState

JOB_TASKS = {"synth": "synth.io_submit", "train": "trainer.run", "eval": "evaluator.run",
             "index": "indexer.build_and_promote"}

router = APIRouter()


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    params: dict[str, Any] = Field(default_factory=dict)


@router.post("/v1/jobs/{kind}")
def submit_job(kind: Literal["synth", "train", "eval", "index"], req: JobRequest,
               _: list[str] = Depends(require("jobs"))) -> dict[str, Any]:
    from shared.queue import get_celery, route_for

    job_id = str(uuid.uuid4())
    with session_scope() as s:
        s.add(Job(id=job_id, kind=kind, state=JobState.pending, params=req.params))
    name = JOB_TASKS[kind]
    try:
        get_celery().send_task(name, args=[job_id, req.params], queue=route_for(name))
    except Exception as exc:  # noqa: BLE001 - broker down: the job row says so
        with session_scope() as s:
            job = s.get(Job, job_id)
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
        counts = dict(s.execute(select(JobItem.state, func.count())
                                .where(JobItem.job_id == job.id).group_by(JobItem.state)).all())
        return {"id": job.id, "kind": job.kind, "state": job.state.value, "error": job.error,
                "params": job.params,
                "items": {getattr(k, "value", k): v for k, v in counts.items()},
                "progress": job_progress(s, job.id), "result": job.result,
                "updated_at": job.updated_at.isoformat() if job.updated_at else None}
