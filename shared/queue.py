"""The Celery app every service shares: broker from Settings (RabbitMQ, Redis, or the embedded
kombu filesystem transport), named queues, routing by task-name prefix, reliable defaults for long
media tasks, and events published to their subscribers by task name (services never import each
other).

Reliability defaults (DESIGN.md): ``acks_late`` so a task killed mid-way is redelivered,
``prefetch 1`` so a worker holds one long task at a time, ``reject_on_worker_lost`` so a SIGKILLed
worker's task goes back to the queue, soft < hard time limit < broker visibility timeout. On
RabbitMQ the server's ``consumer_timeout`` (default 30 min) must exceed the hard limit too.

Those limits are per queue: they hold for the per-item queues (media, caption, io). Tasks of the
long-job queues (train, eval, index) are acked on receipt and have no time limit: they hold a lease
on their Job row while a supervised run lasts (``shared.supervise``), so neither a task limit nor
the broker's consumer or visibility timeout bounds a run; a worker of those queues re-sends the
message of a job whose lease expired (``shared.sweeper.sweep``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from shared.config import Settings, get_settings

QUEUE_MEDIA = "media"
QUEUE_CAPTION = "caption"
QUEUE_IO = "io"
QUEUE_TRAIN = "train"
QUEUE_EVAL = "eval"
QUEUE_INDEX = "index"
QUEUES = (QUEUE_MEDIA, QUEUE_CAPTION, QUEUE_IO, QUEUE_TRAIN, QUEUE_EVAL, QUEUE_INDEX)
# queues of long jobs (leased, supervised runs) and the job kind each one runs
LONG_QUEUES: dict[str, str] = {QUEUE_TRAIN: "train", QUEUE_EVAL: "eval", QUEUE_INDEX: "index"}

# Subscribers of each event, by task name: a service listens by registering the task.
EVENT_SUBSCRIBERS: dict[str, tuple[str, ...]] = {
    "checkpoint.ready": ("evaluator.on_checkpoint_ready",),
    "eval.completed": ("indexer.on_eval_completed",),
}

# Most specific prefix first.
ROUTES: tuple[tuple[str, str], ...] = (
    ("synth.caption", QUEUE_CAPTION),
    ("synth.io", QUEUE_IO),
    ("synth.", QUEUE_MEDIA),
    ("trainer.", QUEUE_TRAIN),
    ("evaluator.", QUEUE_EVAL),
    ("indexer.", QUEUE_INDEX),
)


def route_for(task_name: str) -> str:
    for prefix, queue in ROUTES:
        if task_name.startswith(prefix):
            return queue
    return QUEUE_IO


def _route_task(
    name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any
) -> dict[str, str]:
    return {"queue": route_for(name)}


class _QueueLimits:
    """Task options by queue (Celery task annotations): per-item tasks get the broker's soft and
    hard time limits; long-job tasks none, and are acked on receipt (their lease guards them)."""

    def __init__(self, settings: Settings) -> None:
        self.short = {
            "soft_time_limit": settings.broker.soft_time_limit_s,
            "time_limit": settings.broker.hard_time_limit_s,
        }

    def annotate(self, task: Any) -> dict[str, Any]:
        if route_for(task.name) in LONG_QUEUES:
            return {
                "acks_late": False,
                "reject_on_worker_lost": False,
                "soft_time_limit": None,
                "time_limit": None,
            }
        return self.short


def broker_options(settings: Settings) -> tuple[str, dict[str, Any]]:
    url = settings.broker.url
    opts: dict[str, Any] = {"visibility_timeout": settings.broker.visibility_timeout_s}
    if url.startswith("filesystem"):
        folder = settings.broker_folder
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        opts.update(
            data_folder_in=str(folder / "queue"),
            data_folder_out=str(folder / "queue"),
            processed_folder=str(folder / "processed"),
            store_processed=False,
            control_folder=str(folder / "control"),
            polling_interval=0.05,
        )
    return url, opts


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    url, transport_options = broker_options(settings)
    app = Celery("univr", broker=url, backend=settings.broker.result_backend or None)
    exchange = Exchange("univr", type="direct")
    app.conf.update(
        task_queues=[Queue(q, exchange, routing_key=q) for q in QUEUES],
        task_default_queue=QUEUE_IO,
        task_default_exchange="univr",
        task_default_routing_key=QUEUE_IO,
        task_routes=(_route_task,),
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_annotations=(_QueueLimits(settings),),
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_track_started=True,
        task_always_eager=settings.broker.eager,
        task_eager_propagates=True,
        worker_concurrency=settings.broker.worker_concurrency,
        worker_hijack_root_logger=False,
        worker_send_task_events=True,
        task_send_sent_event=True,
        timezone="UTC",
    )
    if settings.broker.hard_time_limit_s >= settings.broker.visibility_timeout_s:
        raise ValueError(
            "broker.hard_time_limit_s must be below broker.visibility_timeout_s, "
            "or a running task would be redelivered while still running"
        )
    if settings.broker.soft_time_limit_s >= settings.broker.hard_time_limit_s:
        raise ValueError("broker.soft_time_limit_s must be below broker.hard_time_limit_s")
    return app


@lru_cache(maxsize=1)
def get_celery() -> Celery:
    """The process-wide app for the current Settings (``get_celery.cache_clear()`` to rebuild)."""
    return make_celery(get_settings())


class _LazyApp:
    """``celery_app`` resolves to the current app on first use, so importing stays cheap."""

    def __getattr__(self, name: str) -> Any:
        return getattr(get_celery(), name)


celery_app: Celery = _LazyApp()


def emit(event: str, payload: dict[str, Any], app: Celery | None = None) -> list[str]:
    """Publish an event to every subscriber task; returns the task ids."""
    from shared.contracts.events import parse

    if event not in EVENT_SUBSCRIBERS:
        raise ValueError(f"unknown event {event!r}; known: {sorted(EVENT_SUBSCRIBERS)}")
    payload = parse(event, payload).model_dump(mode="json")
    app = app or get_celery()
    return [
        app.send_task(name, kwargs={"event": event, "payload": payload}, queue=route_for(name)).id
        for name in EVENT_SUBSCRIBERS[event]
    ]


def run_worker(
    queues: Sequence[str],
    concurrency: int | None = None,
    include: Iterable[str] = (),
    pool: str = "prefork",
    loglevel: str | None = None,
    app: Celery | None = None,
    hostname: str | None = None,
) -> None:
    """Start a worker in this process on ``queues`` (blocks until it is stopped)."""
    unknown = set(queues) - set(QUEUES)
    if unknown:
        raise ValueError(f"unknown queues {sorted(unknown)}; known: {list(QUEUES)}")
    app = app or get_celery()
    for module in include:
        __import__(module)
    argv = [
        "worker",
        f"--queues={','.join(queues)}",
        f"--pool={pool}",
        f"--loglevel={loglevel or get_settings().log_level}",
        "--without-gossip",
        "--without-mingle",
    ]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    if pool == "prefork":
        _share_cores_between_children(concurrency or app.conf.worker_concurrency or 1)
    # a container's HOSTNAME names its worker (compose's healthcheck pings celery@$HOSTNAME); two
    # workers on one host need two names (`make stack` gives each service its own)
    hostname = hostname or (
        f"celery@{os.environ['HOSTNAME']}" if os.environ.get("HOSTNAME") else None
    )
    if hostname:
        argv.append(f"--hostname={hostname}")
    kinds = tuple(LONG_QUEUES[q] for q in queues if q in LONG_QUEUES)
    if kinds:
        _sweep_expired_leases(app, kinds)
    app.worker_main(argv)


def resend(message: dict[str, Any], app: Celery | None = None) -> str:
    """Send a task message again as it was first sent (``{"task", "args", "kwargs"}``)."""
    app = app or get_celery()
    name = message["task"]
    return app.send_task(
        name,
        args=message.get("args") or [],
        kwargs=message.get("kwargs") or {},
        queue=route_for(name),
    ).id


def _sweep_expired_leases(app: Celery, kinds: tuple[str, ...]) -> None:
    """A long-job worker, once ready, re-sends the jobs of its kinds whose worker died."""
    from celery.signals import worker_ready, worker_shutdown

    from shared.sweeper import start_sweeper

    stops = []

    def start(**_: Any) -> None:
        def send(message: dict[str, Any]) -> None:
            resend(message, app)

        stops.append(start_sweeper(kinds, send))

    def stop(**_: Any) -> None:
        for event in stops:
            event.set()

    worker_ready.connect(start, weak=False)
    worker_shutdown.connect(stop, weak=False)


def queue_depths(app: Celery | None = None) -> dict[str, int | None]:
    """Messages waiting per queue (None where the broker cannot tell)."""
    app = app or get_celery()
    depths: dict[str, int | None] = {}
    try:
        with app.connection_for_read() as conn:
            channel = conn.default_channel
            for q in QUEUES:
                try:
                    depths[q] = channel.queue_declare(queue=q, passive=True).message_count
                except Exception:  # noqa: BLE001 - a queue not declared yet has no messages
                    depths[q] = 0
    except Exception:  # noqa: BLE001 - the broker is down: say so, don't fail the dashboard
        return {q: None for q in QUEUES}
    return depths


def _share_cores_between_children(processes: int) -> None:
    """Each prefork child gets cores / pool size torch threads (``shared.threads``): children
    with torch's default each would spin one thread per core and slow one another down many
    times."""
    from celery.signals import worker_process_init

    from shared.threads import configure_torch_threads

    def share(**_: Any) -> None:
        configure_torch_threads(processes)

    worker_process_init.connect(share, weak=False)
