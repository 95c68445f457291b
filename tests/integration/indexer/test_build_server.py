"""An index build against a Qdrant *server* overlaps each batch's upsert with the next batch's
embedding, and loses nothing when either side fails.

The server is bench/_qdrant_rest_standin.py in its own process: Qdrant's REST routes on Qdrant's own
engine (Qdrant Edge), because no Qdrant server can run here. The real qdrant-client talks to it over
HTTP, so the client is the remote one a stack deployment uses."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from bench._qdrant_rest_standin import start
from services.indexer.build import _embed_and_upsert
from shared.model import EmbedInput
from shared.vectors import is_server

DIM = 8
WAIT_S = (
    20.0  # how long an upsert waits for the next batch's embedding before the test calls it serial
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    proc, url = start(tmp_path_factory.mktemp("qdrant-standin"))
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def client(server, request):
    c = QdrantClient(url=server, timeout=30, check_compatibility=False)
    name = request.node.name.replace("[", "-").replace("]", "")
    c.create_collection(
        name, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)
    )
    c.collection = name
    yield c
    c.close()


class Embedder:
    """Deterministic vectors; records which batches were embedded and can fail at a given batch."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.calls: list[int] = []
        self.started = [threading.Event() for _ in range(64)]
        self.fail_at = fail_at

    def embed(self, items: list[EmbedInput]) -> np.ndarray:
        n = len(self.calls)
        self.calls.append(len(items))
        self.started[n].set()
        if n == self.fail_at:
            raise RuntimeError("embedder failed")
        rng = np.random.default_rng(n)
        v = rng.normal(size=(len(items), DIM)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def rows(n: int) -> list[dict]:  # ids 1..n
    return [
        {
            "id": i + 1,
            "frames": [f"clips/{i}/frames/00.jpg", f"clips/{i}/frames/01.jpg"],
            "fps": 1.0,
            "payload": {"kind": "clip", "n": i},
        }
        for i in range(n)
    ]


def instrument(
    client: QdrantClient,
    embedder: Embedder,
    *,
    wait_next: bool = True,
    batches: int | None = None,
    fail_at: int | None = None,
) -> list[dict]:
    """Wrap the client's upsert: record its thread and ids, fail call ``fail_at``, and
    (``wait_next``) hold each upsert but the last of ``batches`` until the next batch begins
    embedding, recording whether it did: a build that embeds and upserts in turn would record False
    after WAIT_S."""
    seen: list[dict] = []
    real = client.upsert

    def upsert(collection_name, points, **kw):  # noqa: ANN001, ANN202
        k = len(seen)
        seen.append({"thread": threading.current_thread().name, "ids": list(points.ids)})
        if k == fail_at:
            raise RuntimeError("server refused the upsert")
        if wait_next and k + 1 != batches:
            seen[k]["overlapped"] = embedder.started[k + 1].wait(WAIT_S)
        return real(collection_name, points=points, **kw)

    client.upsert = upsert
    return seen


def test_the_client_under_test_is_a_server_client(client):
    assert is_server(client) and not is_server(QdrantClient(location=":memory:"))


def test_a_batch_upserts_while_the_next_one_embeds(client):
    emb = Embedder()
    seen = instrument(client, emb, batches=4)
    progress: list[tuple[int, int]] = []
    _embed_and_upsert(
        client, client.collection, emb, rows(10), 3, progress=lambda d, t: progress.append((d, t))
    )
    assert emb.calls == [3, 3, 3, 1]
    assert all(s["thread"].startswith("upsert") for s in seen)  # off the embedding thread
    assert [s.get("overlapped") for s in seen] == [True, True, True, None]
    assert client.count(client.collection, exact=True).count == 10
    assert [d for d, _ in progress] == [3, 6, 9, 10] and {t for _, t in progress} == {10}
    hit = client.query_points(
        client.collection, query=[1.0] * DIM, limit=1, with_payload=True
    ).points[0]
    assert hit.payload["kind"] == "clip"


def test_a_failed_upsert_stops_the_build_and_keeps_every_other_upsert_sent(client):
    from shared.config import get_settings

    emb = Embedder()
    seen = instrument(client, emb, wait_next=False, fail_at=1)
    with pytest.raises(RuntimeError, match="server refused"):
        _embed_and_upsert(client, client.collection, emb, rows(30), 3)
    stored = {int(p.id) for p in client.scroll(client.collection, limit=100)[0]}
    assert (
        stored == {i for k, s in enumerate(seen) if k != 1 for i in s["ids"]}
        and {1, 2, 3} <= stored
    )
    assert (
        len(emb.calls) <= 2 + get_settings().vectors.upsert_parallel < 10
    )  # it stopped, not at the end


def test_an_embedding_failure_lets_the_upsert_in_flight_finish_so_a_rerun_resumes(client):
    emb = Embedder(fail_at=2)
    seen = instrument(client, emb)
    with pytest.raises(RuntimeError, match="embedder failed"):
        _embed_and_upsert(client, client.collection, emb, rows(10), 3)
    assert [s["ids"] for s in seen] == [[1, 2, 3], [4, 5, 6]]
    assert (
        client.count(client.collection, exact=True).count == 6
    )  # batch 1 was in flight and landed


def test_collection_info_is_what_the_client_parses(server):
    """A build that finds its collection (a resume, a reuse) reads its vector size and metadata
    through ``get_collection``: the stand-in answers Qdrant's whole CollectionInfo."""
    from services.indexer.collections import collection_metadata

    c = QdrantClient(url=server, timeout=30, check_compatibility=False)
    try:
        c.create_collection(
            "info",
            vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE),
            metadata={"model_id": "m-1", "source": None},
        )
        c.create_payload_index("info", "kind", models.PayloadSchemaType.KEYWORD)
        info = c.get_collection("info")
        assert info.config.params.vectors.size == DIM
        assert info.config.params.vectors.distance == models.Distance.COSINE
        assert collection_metadata(c, "info") == {"model_id": "m-1", "source": None}
        assert "kind" in info.payload_schema and info.points_count == 0
    finally:
        c.close()
