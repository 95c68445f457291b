"""The AVG-A promotion gate at a better, equal, worse and missing score, over `univr index promote`
and over the ``eval.completed`` task: only a strictly better score replaces the live version;
``--force`` overrides a refusal and the result says it was forced."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from services.indexer.build import build_index
from services.indexer.cli import app
from services.indexer.collections import live_collection
from shared.config import get_settings
from shared.db import session_scope
from shared.db.models import IndexVersion
from shared.vectors import get_qdrant

from .conftest import FakeEmbedder

LIVE_SCORE = 0.5
CASES = [
    (0.6, True),
    (0.5, False),
    (0.4, False),
    (None, False),
]  # AVG-A of the candidate → promoted


def _state() -> dict[str, tuple[str, float | None]]:
    with session_scope() as s:
        return {r.id: (r.state, r.avg_a) for r in s.query(IndexVersion)}


def _alias() -> str | None:
    client = get_qdrant()
    try:
        return live_collection(client, get_settings().vectors.alias)
    finally:
        client.close()


@pytest.fixture
def live(corpus):
    """In the configured (local-mode) Qdrant: ``ver-live`` live with AVG-A 0.5, and a built
    candidate ``ver-new`` (closed client: the CLI opens its own)."""
    from services.indexer.promote import promote

    client = get_qdrant()
    try:
        build_index(embedder=FakeEmbedder(model_id="tiny-live"), client=client, version="ver-live")
        build_index(embedder=FakeEmbedder(model_id="tiny-new"), client=client, version="ver-new")
        promote("ver-live", avg_a=LIVE_SCORE, client=client)
    finally:
        client.close()
    assert _state()["ver-live"] == ("live", LIVE_SCORE)
    return "ver-new"


def _cli(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["promote", *args, "--json"])
    return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("score", "promoted"), CASES)
def test_cli_promotes_only_a_strictly_better_score(live, score, promoted):
    code, out = _cli(live, *(["--avg-a", str(score)] if score is not None else []))
    assert (code, out["promoted"]) == ((0, True) if promoted else (1, False)), out
    if promoted:
        assert out["forced"] is False and out["overridden"] is None
        assert _state() == {"ver-live": ("retired", LIVE_SCORE), "ver-new": ("live", score)}
        assert _alias() == "ver-new"
    else:
        assert ("no AVG-A" if score is None else "not better") in out["reason"]
        assert _state()["ver-live"] == ("live", LIVE_SCORE) and _state()["ver-new"][0] == "ready"
        assert _alias() == "ver-live"


@pytest.mark.parametrize("score", [0.5, 0.4, None])
def test_cli_force_overrides_a_refusal_and_says_so(live, score):
    code, out = _cli(live, "--force", *(["--avg-a", str(score)] if score is not None else []))
    assert code == 0 and out["promoted"] and out["forced"] is True, out
    assert ("no AVG-A" if score is None else "not better") in out["overridden"]
    assert _state()["ver-new"][0] == "live" and _alias() == "ver-new"


def test_force_on_a_passing_gate_is_not_recorded_as_forced(live):
    code, out = _cli(live, "--force", "--avg-a", "0.7")
    assert code == 0 and out["promoted"] and out["forced"] is False


def test_the_first_version_needs_no_score(corpus):
    client = get_qdrant()
    try:
        build_index(
            embedder=FakeEmbedder(model_id="tiny-first"), client=client, version="ver-first"
        )
    finally:
        client.close()
    code, out = _cli("ver-first")
    assert code == 0 and out["promoted"] and not out["forced"]


@pytest.fixture
def event_builds(monkeypatch):
    """The event task builds the candidate with a fake embedder (no model here) as ``ver-new``."""
    import services.indexer.build as build

    calls = []

    def fake_build(model, adapter, version, client=None, source=None, dataset=None, **_):  # noqa: ANN001, ANN202, ANN003
        calls.append(model)
        return build_index(
            model,
            adapter,
            "ver-new",
            embedder=FakeEmbedder(model_id="tiny-new"),
            client=client,
            source=source,
            dataset=dataset,
        )

    monkeypatch.setattr(build, "build_index", fake_build)
    return calls


@pytest.mark.parametrize(("score", "promoted"), CASES)
def test_eval_completed_promotes_only_a_strictly_better_score(live, event_builds, score, promoted):
    from services.indexer.tasks import on_eval_completed

    payload = {
        "model": "/models/candidate",
        "checkpoint": None,
        "eval_run_id": None,
        "abilities": {"AVG_A": score} if score is not None else {},
    }
    out = on_eval_completed.apply(args=("eval.completed", payload)).get()[
        "result"
    ]  # a leased job's result
    assert out["promoted"] is promoted, out
    if promoted:
        assert (
            not out["forced"] and _state()["ver-new"] == ("live", score) and _alias() == "ver-new"
        )
    else:
        assert out["built"] is False and event_builds == []  # refused before anything is built
        assert ("no AVG-A" if score is None else "not better") in out["reason"]
        assert _state()["ver-live"] == ("live", LIVE_SCORE) and _alias() == "ver-live"
