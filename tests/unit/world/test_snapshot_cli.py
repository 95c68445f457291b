"""`univr media snapshot`: a training snapshot rendered straight from the procedural world, stored
in the home's object store and database; the same seed gives the same snapshot id."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from shared.world.cli import app


def test_media_snapshot_stores_pairs_and_prints_its_id():
    from shared.db import session_scope
    from shared.db.models import Snapshot
    from shared.storage import get_store

    args = ["snapshot", "--videos", "3", "--seed", "5", "--name", "p", "--tasks", "T2V,I2V"]
    args.append("--json")
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    rec = json.loads(first.output.strip().splitlines()[-1])
    with session_scope() as s:
        row = s.get(Snapshot, rec["id"])
        assert row is not None and row.counts == {"T2V": 3, "I2V": 3}
    pairs = get_store().get_bytes(f"snapshots/{rec['id']}/pairs.jsonl").decode().splitlines()
    assert {json.loads(p)["video_id"] for p in pairs} == {f"p-5-{i:04d}" for i in range(3)}
    again = json.loads(CliRunner().invoke(app, args).output.strip().splitlines()[-1])
    assert again["id"] == rec["id"]
