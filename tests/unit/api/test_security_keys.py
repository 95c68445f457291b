"""API keys under attack (issue #19, findings 5 and 6): a valid key is hashed once, then served
from the cache; an unknown id costs the same hashing as a known one; failed attempts are
rate-limited per client before any hashing; keys never reach a log; the dashboard signs in to an
HttpOnly cookie and ``?key=`` is not a credential."""

from __future__ import annotations

import logging

import pytest

from tests.unit.api.conftest import auth


@pytest.fixture
def hashes(monkeypatch):
    """Counts scrypt runs (the real function still runs)."""
    import services.api.keys as keys

    calls = []
    real = keys._hash

    def counting(key_id: str, secret: str) -> str:
        calls.append(key_id)
        return real(key_id, secret)

    monkeypatch.setattr(keys, "_hash", counting)
    return calls


def test_a_valid_key_is_hashed_once(hashes):
    from services.api.keys import check_key, create_key

    token = create_key("a", ["search"])
    hashes.clear()
    assert all(check_key(token) == ["search"] for _ in range(50))
    assert len(hashes) == 1


def test_unknown_and_known_ids_cost_the_same_hashing(hashes):
    from services.api.keys import check_key, create_key

    token = create_key("a", ["search"])
    _, key_id, secret = token.split("_", 2)
    hashes.clear()
    assert check_key(f"univr_{key_id}_{secret}x") is None  # known id, wrong secret
    assert check_key(f"univr_{'0' * 12}_{secret}") is None  # unknown id
    assert hashes == [key_id, "0" * 12]


def test_revocation_drops_the_cached_key():
    from services.api.keys import check_key, create_key, revoke_key

    token = create_key("a", ["jobs"])
    assert check_key(token) == ["jobs"]
    assert revoke_key(token.split("_")[1])
    assert check_key(token) is None


def test_failed_attempts_are_rate_limited_before_hashing(live_api, hashes, monkeypatch):
    from shared.config import get_settings

    monkeypatch.setattr(get_settings().api, "auth_fail_limit", 5)
    monkeypatch.setattr(get_settings().api, "auth_block_delay_s", 0.01)
    c, good = live_api["client"], live_api["keys"]["search"]
    wrong = good[:-3] + "xyz"
    codes = [c.get("/v1/status", headers=auth(wrong)).status_code for _ in range(8)]
    assert codes == [401] * 5 + [429] * 3
    assert len(hashes) == 5  # the blocked attempts hashed nothing
    assert c.get("/v1/status", headers=auth(good)).status_code == 429  # not verified yet: waits
    monkeypatch.setattr(get_settings().api, "auth_fail_window_s", 0.0)
    assert c.get("/v1/status", headers=auth(good)).status_code == 200  # the window has passed


def test_a_missing_key_is_not_a_guess(live_api, monkeypatch):
    from shared.config import get_settings

    monkeypatch.setattr(get_settings().api, "auth_fail_limit", 2)
    c = live_api["client"]
    assert {c.get("/v1/status").status_code for _ in range(5)} == {401}


def test_the_access_log_has_no_query_strings(live_api):
    records = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    access = logging.getLogger("uvicorn.access")
    handler, level = Keep(), access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:  # as uvicorn's httptools/h11 protocols log a request
        access.info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5000",
            "GET",
            "/v1/thumbnails/clips/x?key=univr_0123456789ab_SECRET",
            "1.1",
            200,
        )
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    assert records == ['127.0.0.1:5000 - "GET /v1/thumbnails/clips/x HTTP/1.1" 200']


def test_the_dashboard_signs_in_to_an_httponly_cookie(live_api):
    c, key = live_api["client"], live_api["keys"]["search"]
    assert c.get("/v1/status", params={"key": key}).status_code == 401  # a URL is no credential
    assert c.post("/v1/session", json={"key": key + "x"}).status_code == 401
    r = c.post("/v1/session", json={"key": key})
    assert r.status_code == 200 and r.json() == {"scopes": ["search"]}
    cookie = r.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert c.get("/v1/status").status_code == 200  # the cookie is the credential now
    thumb = c.get(f"/v1/thumbnails/clips/{live_api['clips'][0]}")
    assert thumb.status_code == 404  # authorised (no thumbnail stored), not 401
    assert c.delete("/v1/session").status_code == 200
    assert c.get("/v1/status").status_code == 401
    page = c.get("/").text
    assert "?key=" not in page and "localStorage" not in page and "/v1/session" in page


def test_a_verified_key_passes_from_a_blocked_address(live_api, monkeypatch):
    """Clients behind one address (a NAT): a flood of wrong secrets does not lock out a key
    that was verified before."""
    from shared.config import get_settings

    c, good = live_api["client"], live_api["keys"]["search"]
    assert c.get("/v1/status", headers=auth(good)).status_code == 200
    monkeypatch.setattr(get_settings().api, "auth_fail_limit", 3)
    monkeypatch.setattr(get_settings().api, "auth_block_delay_s", 0.01)
    for _ in range(5):
        c.get("/v1/status", headers=auth(good[:-3] + "xyz"))
    assert c.get("/v1/status", headers=auth(good[:-3] + "abc")).status_code == 429
    assert c.get("/v1/status", headers=auth(good)).status_code == 200
