"""One owner of the embedded Qdrant folder (issue #14 item 4): while ``univr api serve`` holds
it, ``univr search`` goes through that API; without one, it opens the folder itself; when another
process holds the folder, it says so instead of crashing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.api.conftest import served_api


def _univr(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "univr"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def home_with_index(univr_home, tiny_model_dir, monkeypatch):
    """A local Qdrant folder with a live collection of three points (the tiny model's size)."""
    import uuid

    from qdrant_client import models

    from shared.config import get_settings
    from shared.model import Embedder, EmbedInput
    from shared.vectors import get_qdrant

    monkeypatch.setenv("UNIVR_MODEL__NAME_OR_PATH", str(tiny_model_dir))
    get_settings.cache_clear()
    dim = len(Embedder.from_settings().embed([EmbedInput(text="probe")])[0])
    client = get_qdrant()
    client.create_collection(
        "univr-cli", vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE)
    )
    ids = [str(uuid.uuid4()) for _ in range(3)]
    client.upsert(
        "univr-cli",
        points=[
            models.PointStruct(
                id=cid,
                vector=[float(i == j) + 0.1 for j in range(dim)],
                payload={
                    "kind": "clip",
                    "clip_id": cid,
                    "video_id": cid,
                    "video": f"/data/v{i}.mp4",
                    "start_ms": 0,
                    "end_ms": 1000,
                    "duration_s": 1.0,
                    "caption": f"c{i}",
                },
            )
            for i, cid in enumerate(ids)
        ],
    )
    client.update_collection_aliases(
        change_aliases_operations=[
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(
                    collection_name="univr-cli", alias_name=get_settings().vectors.alias
                )
            )
        ]
    )
    client.close()
    env = {
        **os.environ,
        "UNIVR_HOME": str(univr_home),
        "UNIVR_MODEL__NAME_OR_PATH": str(tiny_model_dir),
    }
    return {"env": env, "ids": ids}


def test_search_goes_through_the_running_api(home_with_index, tmp_path):
    env = home_with_index["env"]
    with served_api(env, tmp_path / "api.log"):
        r = _univr("search", "a red circle", "--top-k", "2", "--json", env=env)
        assert r.returncode == 0, r.stderr
        hits = json.loads(r.stdout)
        assert len(hits) == 2 and {h["clip_id"] for h in hits} <= set(home_with_index["ids"])
        assert "Traceback" not in r.stderr
    owner = Path(f"{os.path.abspath(Path(env['UNIVR_HOME']) / 'qdrant')}.api.json")
    assert not any(p.name.endswith(".api.json") for p in Path(env["UNIVR_HOME"]).iterdir()), owner
    r = _univr("search", "a red circle", "--top-k", "1", "--json", env=env)  # no API: local
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["video"].startswith("/data/")


def test_a_held_folder_is_a_clear_error_not_a_crash(home_with_index):
    from shared.vectors import get_qdrant

    client = get_qdrant()  # this process holds the folder now (as an index build would)
    try:
        r = _univr("search", "a red circle", env=home_with_index["env"])
    finally:
        client.close()
    assert r.returncode == 1
    assert "in use by another process" in r.stderr and "Traceback" not in r.stderr
