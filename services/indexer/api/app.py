"""The FastAPI application: search of every query kind, clips and thumbnails, job submission and
status (tasks sent to the broker by name), health, Prometheus metrics, the dashboard.

Security: every /v1 route needs an API key (``Authorization: Bearer univr_…`` or ``?key=`` for
images in the dashboard) with the route's scope; request bodies are size-limited while they are
read; inputs are validated (4xx with a reason, never 5xx for bad input); ids are checked before
they reach the database or the object store."""

from __future__ import annotations

import base64
import binascii
import io
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select

from services.indexer.keys import check_key
from services.indexer.metrics import PlatformCollector
from shared.config import get_settings
from shared.db import init_db, session_scope
from shared.db.jobs import job_progress
from shared.db.models import Caption, Clip, Job, JobItem, JobState, Video

SEARCHES = Counter("univr_search_requests_total", "Search requests", ["kind", "status"])
LATENCY = Histogram("univr_search_latency_seconds", "Search latency")
JOB_TASKS = {"synth": "synth.io_submit", "train": "trainer.run", "eval": "evaluator.run", "index": "indexer.build_and_promote"}


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str | None = Field(None, max_length=200)
    dataset: str | None = Field(None, max_length=100)
    kind: Literal["clip", "video"] | None = None
    min_duration: float | None = Field(None, ge=0, le=1e6)
    max_duration: float | None = Field(None, ge=0, le=1e6)

    @model_validator(mode="after")
    def _ordered(self) -> Filters:
        if self.min_duration is not None and self.max_duration is not None and self.min_duration > self.max_duration:
            raise ValueError("min_duration must not be above max_duration")
        return self


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(None, min_length=1, max_length=8000)
    image_b64: str | None = Field(None, description="A JPEG/PNG image, base64")
    video_b64: str | None = Field(None, description="A short video file, base64")
    top_k: int = Field(10, ge=1, le=100)
    filters: Filters | None = None


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    params: dict[str, Any] = Field(default_factory=dict)


class BodyLimit:
    """Pure ASGI: a body larger than ``api.max_upload_bytes`` gets 413, whether announced by
    content-length or streamed (chunked, no length) — counted while it is read, never buffered past
    the limit; the app then reads the buffered body as usual."""

    def __init__(self, app) -> None:  # noqa: ANN001
        self.app = app

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = get_settings().api.max_upload_bytes
        too_big = JSONResponse({"detail": f"request body larger than {limit} bytes"}, status_code=413)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await too_big(scope, receive, send)
            return
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await too_big(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, sent = b"".join(chunks), False

        async def replay():  # noqa: ANN202
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class Services:
    """Lazily opened, process-wide: one embedder, one Qdrant client (local mode allows one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._embedder = None
        self._client = None

    @property
    def embedder(self):  # noqa: ANN201
        with self._lock:
            if self._embedder is None:
                from shared.model import Embedder

                self._embedder = Embedder.from_settings()
            return self._embedder

    @property
    def client(self):  # noqa: ANN201
        with self._lock:
            if self._client is None:
                from shared.vectors import get_qdrant

                self._client = get_qdrant()
            return self._client

    def reset_client(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client = None


def require(scope: str):  # noqa: ANN201
    def dep(request: Request) -> list[str]:
        if not get_settings().api.require_keys:
            return ["admin"]
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else request.query_params.get("key")
        scopes = check_key(token)
        if scopes is None:
            raise HTTPException(401, "missing or invalid API key", headers={"WWW-Authenticate": "Bearer"})
        if scope not in scopes and "admin" not in scopes:
            raise HTTPException(403, f"this key lacks the '{scope}' scope")
        return scopes

    return dep


def _uuid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise HTTPException(422, f"{what} must be a UUID") from None


def _decode(b64: str, what: str) -> bytes:
    try:
        return base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(422, f"{what} is not valid base64") from None


def create_app() -> FastAPI:
    init_db()
    app = FastAPI(title="univr", version="0.1.0", description="Universal video retrieval: search, jobs, dashboard.")
    app.add_middleware(BodyLimit)
    services = Services()
    app.state.services = services

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        with session_scope() as s:
            s.execute(select(1))
        return {"status": "ok"}

    platform = CollectorRegistry(auto_describe=False)
    platform.register(PlatformCollector())

    @app.get("/metrics")
    def metrics() -> Response:
        # the API's own counters (process-wide registry) and the platform's state read from the database
        return Response(generate_latest() + generate_latest(platform), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/search")
    def search_route(req: SearchRequest, _: list[str] = Depends(require("search"))) -> dict[str, Any]:
        from services.indexer.search import build_filter, query_kind, search
        from shared.media import MediaError

        t0 = time.perf_counter()
        image = video = None
        if req.image_b64:
            from PIL import Image, UnidentifiedImageError

            try:
                image = Image.open(io.BytesIO(_decode(req.image_b64, "image_b64")))
                image.verify()
                image = Image.open(io.BytesIO(_decode(req.image_b64, "image_b64"))).convert("RGB")
            except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
                raise HTTPException(422, f"image_b64 is not a readable image: {exc}") from None
        tmp = None
        try:
            if req.video_b64:
                tmp = tempfile.NamedTemporaryFile(suffix=".video", delete=False)
                tmp.write(_decode(req.video_b64, "video_b64"))
                tmp.close()
                from shared.media.frames import sample_frames

                try:
                    video, _times = sample_frames(tmp.name, get_settings().model.num_frames, max_side=448)
                except MediaError as exc:
                    raise HTTPException(422, f"video_b64: {exc}") from None
            try:
                kind = query_kind(req.text, image, video)
            except ValueError as exc:
                raise HTTPException(422, str(exc)) from None
            f = req.filters
            flt = build_filter(f.source, f.dataset, f.kind, f.min_duration, f.max_duration) if f else None
            from shared.storage import get_store

            store = get_store()
            try:
                results = search(services.embedder, services.client, text=req.text, image=image, video=video,
                                 top_k=req.top_k, filters=flt, presign=store.presign)
            except ValueError as exc:  # e.g. no live index yet
                SEARCHES.labels(kind, "error").inc()
                raise HTTPException(409, f"search unavailable: {exc}") from None
            except Exception as exc:  # noqa: BLE001 - the index is missing or being swapped
                if "not found" in str(exc).lower() or "doesn't exist" in str(exc).lower():
                    services.reset_client()
                    raise HTTPException(409, "no live index yet: build and promote one (univr index build / promote)") from None
                raise
        finally:
            if tmp is not None:
                Path(tmp.name).unlink(missing_ok=True)
        LATENCY.observe(time.perf_counter() - t0)
        SEARCHES.labels(kind, "ok").inc()
        return {"kind": kind, "results": results}

    @app.get("/v1/clips/{clip_id}")
    def clip_route(clip_id: str, _: list[str] = Depends(require("search"))) -> dict[str, Any]:
        cid = _uuid(clip_id, "clip id")
        with session_scope() as s:
            clip = s.get(Clip, cid)
            if clip is None:
                raise HTTPException(404, "no such clip")
            video = s.get(Video, clip.video_id)
            caps = {c.style: c.text for c in s.scalars(select(Caption).where(Caption.target_id == cid))}
            return {"id": clip.id, "video_id": clip.video_id, "video": video.uri if video else None, "start_ms": clip.start_ms,
                    "end_ms": clip.end_ms, "kept": clip.kept, "reject_reason": clip.reject_reason,
                    "filter_scores": clip.filter_scores, "captions": caps, "object_key": clip.object_key}

    @app.get("/v1/thumbnails/{kind}/{item_id}")
    def thumbnail(kind: Literal["clips", "videos"], item_id: str, _: list[str] = Depends(require("search"))) -> Response:
        from shared.storage import ObjectNotFound, get_store

        iid = _uuid(item_id, "id")
        key = f"clips/{iid}/key/00.jpg" if kind == "clips" else f"videos/{iid}/frames/04.jpg"
        try:
            return Response(get_store().get_bytes(key), media_type="image/jpeg")
        except (ObjectNotFound, FileNotFoundError):
            raise HTTPException(404, "no thumbnail") from None

    @app.post("/v1/jobs/{kind}")
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

    @app.get("/v1/jobs/{job_id}")
    def job_route(job_id: str, _: list[str] = Depends(require("jobs"))) -> dict[str, Any]:
        jid = _uuid(job_id, "job id")  # every job id is a UUID (uuid4 here, uuid5 from the CLIs)
        with session_scope() as s:
            job = s.get(Job, jid)
            if job is None:
                raise HTTPException(404, "no such job")
            counts = dict(s.execute(select(JobItem.state, func.count()).where(JobItem.job_id == job.id).group_by(JobItem.state)).all())
            return {"id": job.id, "kind": job.kind, "state": job.state.value, "error": job.error, "params": job.params,
                    "items": {getattr(k, "value", k): v for k, v in counts.items()}, "progress": job_progress(s, job.id),
                    "result": job.result, "updated_at": job.updated_at.isoformat() if job.updated_at else None}

    @app.get("/v1/status")
    def status_route(_: list[str] = Depends(require("search"))) -> dict[str, Any]:
        from services.indexer.status import platform_status
        from shared.queue import queue_depths

        return platform_status(queue_depths())

    @app.get("/", response_class=HTMLResponse)
    def dashboard() -> HTMLResponse:
        return HTMLResponse((Path(__file__).parent / "dashboard.html").read_text(encoding="utf-8"))

    return app

