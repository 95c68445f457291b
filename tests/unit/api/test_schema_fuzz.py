"""Schemathesis over the API's own OpenAPI schema (issue #19), with every credential (none, each
scope, the dashboard's cookie) and hostile bodies: bounded examples per operation, zero 5xx.
Jobs go to the embedded broker (a real transport on disk)."""

from __future__ import annotations

import pytest

MAX_EXAMPLES = 12


@pytest.mark.parametrize("credential", ["none", "search", "jobs", "admin", "cookie"])
def test_no_server_errors_over_the_schema(live_api, credential):
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    keys = live_api["keys"]
    headers = {"Authorization": f"Bearer {keys[credential]}"} if credential in keys else {}
    if credential == "cookie":
        signed_in = live_api["client"].post("/v1/session", json={"key": keys["admin"]})
        assert signed_in.status_code == 200
        headers = {"Cookie": f"univr_session={keys['admin']}"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", live_api["app"])
    failures, calls = [], []
    for op_result in schema.get_all_operations():
        op = op_result.ok()
        if op.path == "/":  # the dashboard page
            continue

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=op.as_strategy())
        def run(case) -> None:  # noqa: ANN001
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

        run()
    assert not failures, failures[:5]
    paths = {p for p, _ in calls}
    assert {"/v1/search", "/v1/jobs/{kind}", "/v1/clips/{clip_id}", "/v1/session"} <= paths
