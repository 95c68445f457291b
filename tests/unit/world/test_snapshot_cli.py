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


def _one_attribute_apart(a: str, b: str) -> bool:
    """``b`` is caption ``a`` with one value of one attribute replaced by another of that
    attribute (a still object that starts moving gains "moving <direction>")."""
    from shared.world.vocab import BACKGROUNDS, COLORS, DIRECTIONS, SHAPES, SIZES

    kinds = [list(COLORS), list(BACKGROUNDS), list(SHAPES), list(SIZES)]
    kinds.append([f" moving {d}" for d in DIRECTIONS] + [""])
    for values in kinds:
        for old in values:
            for new in values:
                if old == new:
                    continue
                if old.startswith(" ") or not old:  # motion phrases sit before " on a"
                    if a.replace(f"{old} on a ", f"{new} on a ", 1) == b:
                        return True
                elif a.replace(f" {old} ", f" {new} ", 1) == b:
                    return True
    return False


def test_twins_differ_in_one_captioned_attribute_and_share_a_split():
    """``twins``: groups whose T2V captions differ from the group's first video in one attribute
    (each of colour, background, shape, motion and size in turn), whose frames differ, and whose
    ids fall on the same side of every held-out split; twins=1 is the plain world."""
    from services.trainer.data import load_snapshot
    from shared.contracts.snapshot import is_heldout
    from shared.storage import get_store
    from shared.world.snapshot import build_world_snapshot

    pairs = load_snapshot(build_world_snapshot(20, seed=3, tasks=("T2V",), twins=4)).pairs
    assert len(pairs) == 20 and len({p["video_id"] for p in pairs}) == 20
    store = get_store()
    changed = []
    for g in range(5):
        group = pairs[4 * g : 4 * g + 4]
        for twin in group[1:]:
            assert _one_attribute_apart(group[0]["query"]["text"], twin["query"]["text"]), (
                group[0]["query"]["text"],
                twin["query"]["text"],
            )
            frames = [store.get_bytes(k) for k in twin["target"]["video"]["frames"]]
            assert frames != [store.get_bytes(k) for k in group[0]["target"]["video"]["frames"]]
            changed.append(twin["query"]["text"])
        for fraction in (0.1, 0.2, 0.5):
            assert len({is_heldout(p["video_id"], fraction) for p in group}) == 1
    assert len(set(changed)) == 15
    plain = build_world_snapshot(6, seed=3, tasks=("T2V",))
    assert plain == build_world_snapshot(6, seed=3, tasks=("T2V",), twins=1)
    assert plain != build_world_snapshot(6, seed=3, tasks=("T2V",), twins=2)
