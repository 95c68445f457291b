"""Every route × every credential → the expected status (issue #21 item 5): no key, a wrong
secret, a revoked key, and a key of each scope (admin implies all)."""

from __future__ import annotations

import uuid

import pytest

from tests.unit.api.conftest import auth

CREDENTIALS = ("none", "wrong", "revoked", "search", "jobs", "admin")
MISSING = str(uuid.UUID(int=7))
# route -> the status for an authorised key (public routes: the same for every credential)
ROUTES = {
    ("GET", "/healthz"): ("public", 200),
    ("GET", "/metrics"): ("public", 200),
    ("GET", "/"): ("public", 200),
    ("DELETE", "/v1/session"): ("public", 200),
    ("POST", "/v1/search"): ("search", 200),
    ("GET", f"/v1/clips/{MISSING}"): ("search", 404),
    ("GET", f"/v1/thumbnails/clips/{MISSING}"): ("search", 404),
    ("GET", f"/v1/thumbnails/videos/{MISSING}"): ("search", 404),
    ("GET", "/v1/status"): ("search", 200),
    ("POST", "/v1/jobs/index"): ("jobs", 200),
    ("GET", f"/v1/jobs/{MISSING}"): ("jobs", 404),
}
BODIES = {
    "/v1/search": {"text": "a red circle", "top_k": 2},
    "/v1/jobs/index": {"params": {"avg_a": 0.5}},
}


def expected(needs: str, ok: int, credential: str) -> int:
    if needs == "public":
        return ok
    if credential in ("none", "wrong", "revoked"):
        return 401
    return ok if credential in (needs, "admin") else 403


def test_every_route_and_credential(live_api, monkeypatch):
    monkeypatch.setattr(
        "shared.queue.get_celery",
        lambda: type("Broker", (), {"send_task": lambda self, name, args, queue: None})(),
    )
    keys = live_api["keys"]
    tokens = {
        "none": None,
        "wrong": keys["search"][:-4] + "AAAA",
        "revoked": keys["revoked"],
        **{s: keys[s] for s in ("search", "jobs", "admin")},
    }
    schema_routes = {
        (m.upper(), p)
        for p, ops in live_api["client"].get("/openapi.json").json()["paths"].items()
        for m in ops
    }
    covered = {
        (
            m,
            p.replace(
                MISSING,
                "{clip_id}"
                if "clips/" in p and "thumb" not in p
                else "{job_id}"
                if "jobs/" in p
                else "{item_id}",
            ),
        )
        for m, p in ROUTES
    }
    covered = {
        (
            m,
            p.replace("thumbnails/clips/{item_id}", "thumbnails/{kind}/{item_id}")
            .replace("thumbnails/videos/{item_id}", "thumbnails/{kind}/{item_id}")
            .replace("/v1/jobs/index", "/v1/jobs/{kind}"),
        )
        for m, p in covered
    }
    assert schema_routes - {("POST", "/v1/session")} <= covered  # sign-in: tested on its own
    got, want = {}, {}
    for (method, path), (needs, ok) in ROUTES.items():
        for credential in CREDENTIALS:
            token = tokens[credential]
            r = live_api["client"].request(
                method, path, json=BODIES.get(path), headers=auth(token) if token else {}
            )
            got[(method, path, credential)] = r.status_code
            want[(method, path, credential)] = expected(needs, ok, credential)
    assert got == want


@pytest.mark.parametrize(
    ("credential", "status"),
    [
        ("none", 422),
        ("wrong", 401),
        ("revoked", 401),
        ("search", 200),
        ("jobs", 200),
        ("admin", 200),
    ],
)
def test_sign_in_with_each_credential(live_api, credential, status):
    keys = live_api["keys"]
    token = {"none": None, "wrong": keys["jobs"] + "x", "revoked": keys["revoked"]}.get(
        credential, keys.get(credential)
    )
    r = live_api["client"].post("/v1/session", json={"key": token} if token else {})
    assert r.status_code == status
