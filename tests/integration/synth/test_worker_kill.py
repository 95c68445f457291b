"""SIGKILL a worker in the middle of a job: the job still completes, nothing lost or duplicated."""

from __future__ import annotations

import os
import signal
import time

import pytest

from services.synth.jobs import is_done, start_local_workers, stop_workers, submit
from services.synth.records import job_summary

from .test_synth_job import check_outcomes


@pytest.mark.rabbitmq
@pytest.mark.postgres
@pytest.mark.slow
def test_sigkill_worker_mid_job(stack_env, rabbitmq_url, postgres_url, corpus):
    stack_env(rabbitmq_url, postgres_url)
    info = submit(str(corpus))
    workers = start_local_workers(1)
    kills = 0
    deadline = time.monotonic() + 600
    try:
        while not is_done(info["job"]):
            assert time.monotonic() < deadline, "job did not complete"
            done = sum(
                v
                for k, v in job_summary(info["job"])["counts"].items()
                if k in ("done", "rejected")
            )
            if kills < 2 and done >= 4 + 8 * kills:  # kill twice, mid-job
                os.killpg(workers[0].pid, signal.SIGKILL)
                workers[0].wait()
                kills += 1
                workers = start_local_workers(1)
            time.sleep(0.3)
    finally:
        stop_workers(workers)
    assert kills == 2
    check_outcomes(job_summary(info["job"]), corpus)
