"""Event payloads: what the trainer, evaluator and indexer tell one another through the broker.

``shared.queue.emit`` validates a payload before it is sent and each subscriber validates it where
it is read, so a renamed or missing field fails at the sender (or as a clear error on the
receiving job), never as a KeyError deep in another service. Extra fields are kept (a newer sender
may add some) but never required.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Event(BaseModel):
    model_config = ConfigDict(extra="allow")


class CheckpointReady(Event):
    """``checkpoint.ready``: a training run saved a checkpoint (trainer → evaluator)."""

    run_id: str
    step: int
    checkpoint: str  # object-store prefix of the checkpoint (its adapter and state)
    model: str  # the base model the adapter belongs to
    # optional overrides of what the evaluator scores
    uvrb: str | None = None
    adapter: str | None = None
    datasets: list[str] | str | None = None


class EvalCompleted(Event):
    """``eval.completed``: a model (and adapter) was scored on UVRB (evaluator → indexer, whose
    promotion gate compares ``abilities["AVG_A"]`` with the live version's)."""

    eval_run_id: str | None = None
    model: str
    adapter: str | None = None
    abilities: dict[str, float | None]
    checkpoint: str | None = None


EVENTS: dict[str, type[Event]] = {
    "checkpoint.ready": CheckpointReady,
    "eval.completed": EvalCompleted,
}


def parse(event: str, payload: dict[str, Any]) -> Event:
    """The payload of ``event`` as its model (pydantic's ValidationError names a bad field)."""
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}; known: {sorted(EVENTS)}")
    return EVENTS[event].model_validate(payload)
