"""The API's unit-test fixtures: an in-memory Qdrant client, the real app on the tiny model with
a live collection and keys of every scope, and a served API process."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@pytest.fixture
def qdrant():
    from qdrant_client import QdrantClient

    client = QdrantClient(location=":memory:")
    yield client
    client.close()


@pytest.fixture
def live_api(univr_home, tiny_model_dir, monkeypatch):
    """The real app on the tiny model, with a live collection of four points whose payloads name
    server paths (as an index of a local folder does) and keys of every scope (and a revoked one).
    Failed key checks are not rate-limited here unless a test says so."""
    import uuid

    from fastapi.testclient import TestClient
    from qdrant_client import models

    from services.api.app import create_app
    from services.api.keys import create_key, forget_cached, revoke_key
    from shared.config import get_settings

    monkeypatch.setenv("UNIVR_MODEL__NAME_OR_PATH", str(tiny_model_dir))
    monkeypatch.setenv("UNIVR_API__AUTH_FAIL_LIMIT", "100000")
    get_settings.cache_clear()
    forget_cached()
    app = create_app()
    services = app.state.services
    client = services.client
    from shared.model import EmbedInput

    vec = services.embedder.embed([EmbedInput(text="probe")])[0]
    dim = len(vec)
    client.create_collection(
        "univr-test", vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE)
    )
    clips = [str(uuid.uuid4()) for _ in range(4)]
    client.upsert(
        "univr-test",
        points=[
            models.PointStruct(
                id=cid,
                vector=[float(i + 1 == j) + 0.1 for j in range(dim)],
                payload={
                    "kind": "clip",
                    "clip_id": cid,
                    "video_id": str(uuid.uuid4()),
                    "video": f"/srv/private/raw/v{i}.mp4",
                    "source": "src",
                    "source_uri": "/srv/private/raw",
                    "start_ms": 0,
                    "end_ms": 2000,
                    "duration_s": 2.0,
                    "caption": f"clip {i}",
                    "object_key": f"clips/{cid}/clip.mp4",
                    "thumbnail_key": f"clips/{cid}/key/00.jpg",
                    "dataset": [],
                    "snapshot": [],
                },
            )
            for i, cid in enumerate(clips)
        ],
    )
    client.update_collection_aliases(
        change_aliases_operations=[
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(
                    collection_name="univr-test", alias_name=get_settings().vectors.alias
                )
            )
        ]
    )
    keys = {s: create_key(f"test-{s}", [s]) for s in ("search", "jobs", "admin")}
    keys["revoked"] = create_key("gone", ["admin"])
    revoke_key(keys["revoked"].split("_")[1])
    yield {"client": TestClient(app), "app": app, "keys": keys, "clips": clips}
    services.reset_client()
    forget_cached()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@contextmanager
def served_api(env: dict[str, str], log_path: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """``univr api serve`` as a user starts it, on a free port; yields (process, base URL)."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    univr = str(Path(sys.executable).parent / "univr")
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [univr, "api", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.3)
            yield proc, base
        finally:
            proc.terminate()
            proc.wait(timeout=30)
