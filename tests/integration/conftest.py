"""A synthesized clip corpus (real workers, embedded broker) and an API with a live index: for the
API's tests and the indexer's (promotion is tested while searches run). Defined here, once for
both folders: a session fixture imported into two conftest files is built once per file."""

from __future__ import annotations

import os

import pytest

from tests.integration.trainer.conftest import univr


@pytest.fixture(scope="session")
def clip_home(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("index-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIVR_")}
    env.update(UNIVR_HOME=str(root / "home"), HF_HUB_OFFLINE="1")
    from shared.world import generate

    vids = generate(root / "raw", 10, seed=31, workers=2)
    univr("synth", "run", str(root / "raw" / "manifest.jsonl"), "--json", "--workers", "2", env=env)
    univr("model", "tiny", "--out", str(root / "home" / "models" / "tiny"), env=env)
    return {"env": env, "root": root, "videos": [v.path for v in vids if not v.failure]}


@pytest.fixture
def api(clip_home, monkeypatch, tmp_path):
    """A TestClient on a fresh copy of the corpus home, with keys of each scope and a live index.
    The copy lives in the test's own tmp folder: a name from ``id()`` of a fixture object was
    reused once that object was freed, and a later test's copy then collided with an earlier one
    (FileExistsError, seen in full-suite runs)."""
    import shutil

    from fastapi.testclient import TestClient

    from shared.config import get_settings
    from shared.db.session import reset_engines

    home = tmp_path / "api-home"
    shutil.copytree(clip_home["env"]["UNIVR_HOME"], home)
    monkeypatch.setenv("UNIVR_HOME", str(home))
    get_settings.cache_clear()
    reset_engines()
    from services.api.app import create_app
    from services.api.keys import create_key
    from services.indexer.build import build_index
    from services.indexer.promote import promote

    app = create_app()
    client = TestClient(app)
    services = app.state.services
    built = build_index(embedder=services.embedder, client=services.client)
    promote(built["version"], avg_a=0.1, client=services.client)
    keys = {s: create_key(f"test-{s}", [s]) for s in ("search", "jobs")}
    yield {
        "client": client,
        "app": app,
        "keys": keys,
        "version": built["version"],
        "points": built["points"],
        "videos": clip_home["videos"],
        "home": home,
    }
    services.reset_client()
