"""Indexing: embed a corpus (see corpus.py) with a model version into the collection named for the
model and the build scope, in batches. Re-running the same build resumes it (points already there
are skipped: a takeover after a dead worker goes on after the last upserted batch, and says so on
the job's row and timeline) or, when nothing is missing, reuses the finished collection."""

from __future__ import annotations

import logging
import time
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from qdrant_client import models

from services.indexer.collections import (
    PAYLOAD_INDEXES,
    collection_metadata,
    collection_name,
    scope,
)
from services.indexer.corpus import corpus_rows
from shared.config import get_settings
from shared.db import init_db, session_scope
from shared.db.lease import report_resume
from shared.db.models import IndexVersion
from shared.model import Embedder, EmbedInput, VideoFrames
from shared.vectors import get_qdrant, is_server

log = logging.getLogger(__name__)

LIVE = "live"


def _open_collection(client, version: str, embedder: Embedder, build_scope: dict[str, Any]) -> None:  # noqa: ANN001
    """Create the collection, or check that an existing one holds this model's vectors of this
    scope."""
    meta = {
        "model_id": embedder.model_id,
        "model": embedder.name_or_path,
        "adapter": embedder.adapter,
        **build_scope,
    }
    if not client.collection_exists(version):
        client.create_collection(
            version,
            vectors_config=models.VectorParams(size=embedder.dim, distance=models.Distance.COSINE),
            metadata=meta,
        )
    else:
        have = collection_metadata(client, version)
        for field in ("model_id", "source", "dataset"):
            if field in have and have[field] != meta[field]:
                raise ValueError(
                    f"collection {version} holds {field}={have[field]!r}"
                    f", this build has {meta[field]!r}; "
                    "give another --version"
                )
        size = client.get_collection(version).config.params.vectors.size
        if size != embedder.dim:
            raise ValueError(
                f"collection {version} has {size}-dim vectors, the model makes {embedder.dim}"
            )
    with (
        warnings.catch_warnings()
    ):  # local mode ignores payload indexes (and says so); a server uses them
        warnings.filterwarnings(
            "ignore", message="Payload indexes have no effect", category=UserWarning
        )
        for (
            field,
            schema,
        ) in PAYLOAD_INDEXES.items():  # idempotent; also adds fields new since an older build
            client.create_payload_index(version, field, schema)


def present_ids(client, version: str) -> set[str]:  # noqa: ANN001
    present: set[str] = set()
    offset = None
    while True:
        points, offset = client.scroll(
            version, limit=1024, offset=offset, with_payload=False, with_vectors=False
        )
        present.update(str(p.id) for p in points)
        if offset is None:
            return present


def _state(version: str) -> str | None:
    """The version's recorded state (``building`` while a build of it has not finished)."""
    with session_scope() as s:
        row = s.get(IndexVersion, version)
        return row.state if row is not None else None


def _mark(version: str, embedder: Embedder, state: str, points: int | None = None) -> None:
    """Record the version's state; a live version stays live while new points are added to it."""
    with session_scope() as s:
        row = s.get(IndexVersion, version)
        if row is None:
            row = IndexVersion(
                id=version, model=embedder.name_or_path, adapter=embedder.adapter, state=state
            )
            s.add(row)
        elif row.state != LIVE:
            row.state = state
        row.model, row.adapter = embedder.name_or_path, embedder.adapter
        if points is not None:
            row.points = points


def _embed_and_upsert(
    client,
    version: str,
    embedder: Embedder,
    todo: list[dict[str, Any]],
    batch_size: int,  # noqa: ANN001
    progress=None,
) -> None:  # noqa: ANN001
    """Embed ``todo`` a batch at a time; against a server the batch's upsert runs in a writer thread
    while the next batch embeds (``vectors.upsert_parallel`` of them in flight), hiding the round
    trip. On any failure the upserts already sent finish first, so a re-run resumes after them."""
    parallel = get_settings().vectors.upsert_parallel if is_server(client) else 0
    done = 0

    def upsert(chunk: list[dict[str, Any]], vecs) -> int:  # noqa: ANN001
        client.upsert(
            version,
            points=models.Batch(
                ids=[r["id"] for r in chunk],
                vectors=vecs.tolist(),
                payloads=[r["payload"] for r in chunk],
            ),
            wait=True,
        )
        return len(chunk)

    def finished(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, len(todo))

    with ThreadPoolExecutor(max_workers=max(parallel, 1), thread_name_prefix="upsert") as pool:
        in_flight: deque[Future[int]] = deque()
        for i in range(0, len(todo), batch_size):
            chunk = todo[i : i + batch_size]
            vecs = embedder.embed(
                [EmbedInput(video=VideoFrames(r["frames"], fps=r.get("fps"))) for r in chunk]
            )
            if not parallel:
                finished(upsert(chunk, vecs))
                continue
            in_flight.append(pool.submit(upsert, chunk, vecs))
            while len(in_flight) > parallel or (in_flight and in_flight[0].done()):
                finished(in_flight.popleft().result())  # an upsert's error stops the build here
        while in_flight:
            finished(in_flight.popleft().result())


def build_index(
    model: str | None = None,
    adapter: str | None = None,
    version: str | None = None,
    batch_size: int | None = None,
    embedder: Embedder | None = None,
    progress=None,
    client=None,  # noqa: ANN001
    source: str | None = None,
    dataset: str | None = None,
) -> dict[str, Any]:
    """``client``: an open Qdrant client to use (Qdrant local mode allows one per process)."""
    t0 = time.perf_counter()
    init_db()
    build_scope = scope(source, dataset)
    rows = corpus_rows(
        source, dataset
    )  # first: an unknown scope or an empty corpus fails before any model loads
    if not rows:
        raise ValueError(
            "nothing to index: no kept clips in this scope (run a synthesis job first)"
        )
    batch_size = batch_size or get_settings().vectors.upsert_batch
    embedder = embedder or Embedder(model, adapter)
    own_client = client is None
    client = client or get_qdrant()
    try:
        version = version or collection_name(embedder.model_id, build_scope)
        log.info("index build into %s: model %s", version, embedder.identity)
        _open_collection(client, version, embedder, build_scope)
        present = present_ids(client, version)
        todo = [r for r in rows if r["id"] not in present]
        # an interrupted build (a takeover) goes on after its last upsert; it may find every point
        # there already (killed after the last upsert, before the version was marked ready)
        interrupted = bool(present) and _state(version) == "building"
        if interrupted:
            report_resume(points=len(present), batch=len(present) // batch_size, of=len(rows))
        _mark(version, embedder, "building" if todo else "ready")
        _embed_and_upsert(client, version, embedder, todo, batch_size, progress)
        count = client.count(version, exact=True).count
        _mark(version, embedder, "ready", count)
    finally:
        if own_client:
            client.close()
    return {
        "version": version,
        "points": count,
        "expected": len(rows),
        "embedded": len(todo),
        "resumed": interrupted,
        "reused": not todo,
        "model_id": embedder.model_id,
        **build_scope,
        "wall_seconds": round(time.perf_counter() - t0, 2),
    }
