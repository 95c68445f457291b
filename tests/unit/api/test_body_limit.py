"""The request size limit: announced (content-length) and streamed (chunked, no content-length)
bodies over the limit get 413; bodies under it reach the route intact."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from services.api.middleware import BodyLimit
from shared.config import get_settings

LIMIT = 1000


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setattr(get_settings().api, "max_upload_bytes", LIMIT)
    app = FastAPI()
    app.add_middleware(BodyLimit)

    @app.post("/echo")
    async def echo(request: Request) -> dict:
        body = await request.body()
        return {"size": len(body), "head": body[:10].decode()}

    @app.get("/ping")
    def ping() -> dict:
        return {"ok": True}

    return TestClient(app)


def _chunks(total: int, size: int = 100):  # noqa: ANN202 - a generator body is sent chunked, without content-length
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        yield b"a" * n
        sent += n


def test_a_chunked_body_over_the_limit_gets_413(client):
    r = client.post("/echo", content=_chunks(LIMIT + 1))
    assert r.status_code == 413 and str(LIMIT) in r.json()["detail"]


def test_a_chunked_body_under_the_limit_reaches_the_route_intact(client):
    r = client.post("/echo", content=_chunks(LIMIT))
    assert r.status_code == 200 and r.json() == {"size": LIMIT, "head": "a" * 10}


def test_announced_lengths(client):
    assert client.post("/echo", content=b"b" * (LIMIT + 1)).status_code == 413
    assert client.post("/echo", content=b"b" * 10).json() == {"size": 10, "head": "b" * 10}
    assert client.post("/echo", content=b"b", headers={"content-length": "-1"}).status_code == 413
    assert client.get("/ping").json() == {"ok": True}


def test_the_real_app_limits_chunked_uploads_before_anything_else(monkeypatch):
    from services.api.app import create_app

    monkeypatch.setattr(get_settings().api, "max_upload_bytes", LIMIT)
    c = TestClient(create_app())
    assert (
        c.post(
            "/v1/search", content=_chunks(10 * LIMIT), headers={"content-type": "application/json"}
        ).status_code
        == 413
    )
    assert (
        c.post("/v1/search", json={"text": "x"}).status_code == 401
    )  # small bodies go on to the key check
