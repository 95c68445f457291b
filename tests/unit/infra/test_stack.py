"""`make stack` reads compose.yaml: its variable syntax, every univr service's command and
environment, localised to this host (no compose host name left, volumes as folders)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared import stack

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}", "a"),
        ("$A/x", "a/x"),
        ("${NOPE:-d}", "d"),
        ("${EMPTY:-d}", "d"),
        ("${EMPTY-d}", ""),
        ("$${HOSTNAME}", "${HOSTNAME}"),
        ("x$$y", "x$y"),
    ],
)
def test_compose_variable_syntax(text, expected):
    assert stack.interpolate(text, {"A": "a", "EMPTY": ""}) == expected


def test_a_required_variable_that_is_missing_names_itself():
    with pytest.raises(ValueError, match="PASS: set it"):
        stack.interpolate("${PASS:?set it}", {})


def test_every_univr_service_of_compose_runs_its_command_against_this_host(tmp_path):
    variables = {**stack.HOST_DEFAULTS, "EMBED_MODEL": "/m/tiny"}
    st = stack.Stack(
        ROOT / "compose.yaml", tmp_path, variables, dict(stack.LOCAL_PORTS, minio=9100)
    )
    services = {s.name: s for s in st.services()}
    univr = {n for n, s in services.items() if s.is_univr}
    assert {"migrate", "synth-worker", "trainer", "evaluator", "indexer", "api"} <= univr
    assert services["migrate"].one_shot and not services["api"].one_shot
    assert services["trainer"].profiles == ["gpu"]  # a gpu-profile service runs too
    assert services["trainer-cpu"].profiles == ["cpu"]  # `make stack`'s default profile trains
    hosts = [s for s in services if not services[s].is_univr]
    for name in univr:
        svc = services[name]
        assert svc.command[0] in ("univr", "celery"), svc.command
        env = st.env_of(svc)
        assert env["UNIVR_PROFILE"] == "stack" and env["HOSTNAME"].startswith(f"{name}.")
        for value in (
            v
            for k, v in env.items()
            if k.startswith("UNIVR_") and k not in ("UNIVR_CAPTION__BASE_URL",)
        ):
            assert not any(re.search(rf"(^|[/@]){h}:\d", value) for h in hosts), (
                value
            )  # vllm's URL is unused (template captioner)
        assert env["UNIVR_STORAGE__ENDPOINT"] == "127.0.0.1:9100"
        assert env["UNIVR_MODEL__NAME_OR_PATH"] == "/m/tiny"


def test_celery_runs_as_a_module_when_its_script_is_not_on_path(tmp_path, monkeypatch):
    import sys

    monkeypatch.setenv("PATH", str(tmp_path))  # no celery script anywhere
    flower = ["celery", "-A", "shared.queue:celery_app", "flower"]
    assert stack._executable(flower, tmp_path) == [sys.executable, "-m", "celery", *flower[1:]]
    (tmp_path / "celery").write_text("#!/bin/sh\n")
    assert stack._executable(flower, tmp_path) == [str(tmp_path / "celery"), *flower[1:]]
