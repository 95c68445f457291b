"""The indexer tests' FakeEmbedder gives the same vector for the same input in every process
(Python salts ``hash`` of a str per process, so a vector seeded by it would change between runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CODE = (
    "import json; from types import SimpleNamespace as Item; "
    "from tests.unit.indexer.conftest import FakeEmbedder; "
    "print(json.dumps(FakeEmbedder().embed([Item(text='a red circle', video=None), "
    "Item(text=None, video=Item(keys=['clips/c/frames/00.jpg']))]).tolist()))"
)


def _vectors(hash_seed: str) -> list:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    out = subprocess.run(
        [sys.executable, "-c", CODE], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_vectors_do_not_depend_on_the_process_hash_seed():
    a, b = _vectors("1"), _vectors("2")
    assert a == b and a[0] != a[1]
