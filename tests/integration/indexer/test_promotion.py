"""Promotion while queries run: no failed query, an atomic switch; a worse model is not promoted."""

from __future__ import annotations

import threading

import pytest

from services.indexer.collections import live_collection


def test_promotion_under_load_is_atomic_and_gated(api):
    from services.indexer.build import build_index
    from services.indexer.promote import PromotionRefused, promote
    from shared.config import get_settings

    app, c = api["app"], api["client"]
    services = app.state.services
    alias = get_settings().vectors.alias
    second = build_index(embedder=services.embedder, client=services.client, version="univr-second")
    stop, results = threading.Event(), []

    def hammer() -> None:
        while not stop.is_set():
            r = c.post(
                "/v1/search",
                json={"text": "a green square", "top_k": 3},
                headers={"Authorization": f"Bearer {api['keys']['search']}"},
            )
            results.append(r.status_code)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        promote(second["version"], avg_a=0.2, client=services.client)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert results and set(results) == {200}
    assert live_collection(services.client, alias) == "univr-second"
    assert services.client.count(alias, exact=True).count == second["points"]
    worse = build_index(embedder=services.embedder, client=services.client, version="univr-worse")
    with pytest.raises(PromotionRefused, match="not better"):
        promote(worse["version"], avg_a=0.15, client=services.client)
    assert live_collection(services.client, alias) == "univr-second"


def test_incomplete_collection_is_refused(api):
    from qdrant_client import models

    from services.indexer.promote import PromotionRefused, promote
    from shared.db import session_scope, upsert
    from shared.db.models import IndexVersion

    client = api["app"].state.services.client
    client.create_collection(
        "univr-partial", vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE)
    )
    with session_scope() as s:
        upsert(
            s, IndexVersion, [{"id": "univr-partial", "model": "m", "points": 99, "state": "ready"}]
        )
    with pytest.raises(PromotionRefused, match="expected 99"):
        promote("univr-partial", avg_a=0.9, client=client)


def test_canary_accepts_identical_vectors():
    """A single-shot video and its only clip embed identically; the canary must not refuse that."""
    from qdrant_client import QdrantClient, models

    from services.indexer.promote import verify

    client = QdrantClient(location=":memory:")
    client.create_collection(
        "c", vectors_config=models.VectorParams(size=3, distance=models.Distance.COSINE)
    )
    client.upsert(
        "c",
        points=[models.PointStruct(id=i, vector=[1.0, 0.0, 0.0]) for i in (1, 2)]
        + [models.PointStruct(id=3, vector=[0.0, 1.0, 0.0])],
    )
    assert verify(client, "c", 3, canaries=3)["points"] == 3
