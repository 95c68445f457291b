"""API keys on PostgreSQL: hostile tokens (NUL bytes, odd characters) are rejected, never an
error from the database; hostile ids and params get 4xx."""

from __future__ import annotations

import pytest


@pytest.mark.postgres
@pytest.mark.parametrize(
    "token",
    [
        "univr_" + "a" * 11 + "\x00_secret",
        "univr_aaaaaaaaaaaa_sec\x00ret",
        "univr_\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9aaaaaa_s",
    ],
)
def test_hostile_tokens_on_postgres(pg, token):
    from services.api.keys import check_key, create_key

    good = create_key("x", ["search"])
    assert check_key(token) is None
    assert check_key(good) == ["search"]


@pytest.mark.postgres
def test_hostile_ids_in_the_api_get_4xx_on_postgres(pg):
    from fastapi.testclient import TestClient

    from services.api.app import create_app
    from services.api.keys import create_key

    c = TestClient(create_app())
    key = create_key("ops", ["admin"])
    assert c.get("/v1/status", params={"key": "univr_aaaaaaaaaaa\x00_x"}).status_code == 401
    for path in ("/v1/jobs/abc%00def", "/v1/clips/abc%00def", "/v1/jobs/" + "9" * 80):
        assert c.get(path, headers={"Authorization": f"Bearer {key}"}).status_code == 422, path
    assert (
        c.get(
            "/v1/jobs/00000000-0000-0000-0000-000000000000",
            headers={"Authorization": f"Bearer {key}"},
        ).status_code
        == 404
    )


@pytest.mark.postgres
def test_job_params_with_nul_bytes_on_postgres(pg):
    from fastapi.testclient import TestClient

    from services.api.app import create_app
    from services.api.keys import create_key

    c = TestClient(create_app())
    auth = {"Authorization": f"Bearer {create_key('ops', ['jobs'])}"}
    r = c.post("/v1/jobs/index", json={"params": {"model": "a\u0000b", "k\u0000": 1}}, headers=auth)
    assert r.status_code < 500, r.text
