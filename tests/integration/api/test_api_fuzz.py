"""Schemathesis against the API's own OpenAPI schema, with and without a key: no input, however
malformed, makes the server answer 5xx."""

from __future__ import annotations

import pytest


@pytest.mark.slow
@pytest.mark.parametrize("with_key", [True, False])
def test_no_server_errors(api, with_key):
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_asgi("/openapi.json", api["app"])
    headers = {"Authorization": f"Bearer {api['keys']['search']}"} if with_key else {}
    failures, calls = [], []
    for op_result in schema.get_all_operations():
        op = op_result.ok()
        if op.path == "/":  # the dashboard page
            continue

        @settings(
            max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        @given(case=op.as_strategy())
        def run(case):  # noqa: ANN001
            response = case.call(headers=headers)
            calls.append((case.operation.path, response.status_code))
            if response.status_code >= 500:
                failures.append(
                    (
                        case.operation.method,
                        case.operation.path,
                        response.status_code,
                        response.text[:200],
                    )
                )
            assert response.status_code < 500

        try:
            run()
        except AssertionError:
            pass
    assert not failures, failures[:5]
    paths = {p for p, _ in calls}
    assert {"/v1/search", "/v1/jobs/{kind}", "/v1/clips/{clip_id}"} <= paths and len(calls) > 50
    if not with_key:
        assert all(
            code in (401, 404, 405, 413, 415, 422) or p in ("/healthz", "/metrics", "/v1/session")
            for p, code in calls
        )
