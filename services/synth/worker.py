"""A synthesis worker process: imports the pipeline tasks and consumes the synth queues."""

from __future__ import annotations

from collections.abc import Sequence

from shared.queue import run_worker


def main(queues: Sequence[str], concurrency: int | None = None, pool: str = "prefork") -> None:
    import services.synth.tasks  # noqa: F401 - registers the tasks

    run_worker(list(queues), concurrency=concurrency, pool=pool)
