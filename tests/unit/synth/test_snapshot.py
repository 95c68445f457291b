"""Dataset snapshots: Parquet shards with a manifest of counts and checksums, deterministic (the
same rows give the same id and the same bytes; one more pair gives another id), a held-out split by
source video recorded in the manifest and used by the trainer, readable by pandas and HF datasets
from the shard folder, older JSON-lines snapshots still read, a damaged shard refused."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import delete

from services.synth.snapshot import create_snapshot
from services.trainer.data import load_snapshot, split_pairs
from shared import layout
from shared.config import get_settings
from shared.db import init_db, session_scope, upsert
from shared.db.models import Clip, Frame, Pair, Snapshot, Video
from shared.snapshots import SnapshotCorrupt, iter_pairs, read_manifest
from shared.storage import get_store

N_VIDEOS = 40


def _pair(i: int, v: int, clip: str) -> dict:
    return {
        "id": f"p{i:04d}",
        "task": ("T2V", "I2V", "V2V")[i % 3],
        "domain": "coarse",
        "video_id": f"v{v:02d}",
        "dedup_cluster": clip,
        "query": {"text": f"query {i}"},
        "target": {"video": {"clip_id": clip, "frames": layout.frame_keys(clip, 2), "fps": 2.0}},
        "hard_negatives": [{"video": {"clip_id": "c-gone", "frames": []}}] if i % 5 == 0 else [],
    }


@pytest.fixture
def rows(monkeypatch):
    """Stored clips of 40 videos and 3 pairs each; a clip not stored ("c-gone") named as a hard
    negative by some (left out of the snapshot, and counted). Shards of 25 rows."""
    monkeypatch.setenv("UNIVR_SYNTH__SNAPSHOT_SHARD_ROWS", "25")
    get_settings.cache_clear()
    init_db()
    with session_scope() as s:
        upsert(s, Video, [{"id": f"v{v:02d}", "uri": f"/v{v}"} for v in range(N_VIDEOS)])
        upsert(
            s,
            Clip,
            [
                {
                    "id": f"c{v:02d}",
                    "video_id": f"v{v:02d}",
                    "start_ms": 0,
                    "end_ms": 1000,
                    "kept": True,
                }
                for v in range(N_VIDEOS)
            ]
            + [{"id": "c-gone", "video_id": "v00", "start_ms": 1, "end_ms": 2, "kept": False}],
        )
        upsert(
            s,
            Frame,
            [
                {"id": f"f{v}", "clip_id": f"c{v:02d}", "index": 0, "time_ms": 0, "object_key": "k"}
                for v in range(N_VIDEOS)
            ],
        )
        upsert(s, Pair, [_pair(i, i // 3, f"c{i // 3:02d}") for i in range(3 * N_VIDEOS)])


def _shard_bytes(manifest: dict) -> list[bytes]:
    return [get_store().get_bytes(sh["key"]) for sh in manifest["shards"]]


def _forget(sid: str) -> None:
    get_store().delete_prefix(layout.snapshot_prefix(sid))
    with session_scope() as s:
        s.execute(delete(Snapshot).where(Snapshot.id == sid))


def test_shards_manifest_and_determinism(rows):
    first = create_snapshot("a")
    assert (
        first["format"] == "parquet"
        and first["pairs"] == 120
        and sum(first["counts"].values()) == 120
    )
    assert [sh["rows"] for sh in first["shards"]] == [25, 25, 25, 25, 20]
    assert first["skipped"] == {"pairs": 0, "hard_negatives": 24}
    for sh, data in zip(first["shards"], _shard_bytes(first), strict=True):
        assert hashlib.sha256(data).hexdigest() == sh["sha256"] and len(data) == sh["bytes"]
    before = _shard_bytes(first)
    _forget(first["id"])  # written again from the same rows, from scratch: the same id and bytes
    again = create_snapshot("b")
    assert again["id"] == first["id"] and _shard_bytes(again) == before
    with session_scope() as s:  # one more pair: another snapshot
        upsert(s, Pair, [_pair(999, 3, "c03")])
    assert create_snapshot("c")["id"] != first["id"]


def test_a_held_out_split_by_video_is_recorded_and_used_by_the_trainer(rows):
    plain = create_snapshot("plain")
    split = create_snapshot("split", holdout_fraction=0.25)
    assert split["id"] != plain["id"]
    rec = split["splits"]
    assert rec["holdout_fraction"] == 0.25 and rec["by"] == "video_id"
    assert rec["train"] + rec["heldout"] == 120 and 0 < rec["heldout_videos"] < N_VIDEOS
    pairs = list(iter_pairs(get_store(), read_manifest(get_store(), split["id"])))
    held = {p["video_id"] for p in pairs if p["split"] == "heldout"}
    kept = {p["video_id"] for p in pairs if p["split"] == "train"}
    assert (
        not held & kept and len(held) == rec["heldout_videos"] and len(kept) == rec["train_videos"]
    )
    train, heldout = split_pairs(
        load_snapshot(split["id"]), fraction=0.0
    )  # the recorded split wins
    assert {p["id"] for p in heldout} == {p["id"] for p in pairs if p["split"] == "heldout"}
    assert len(train) == rec["train"] and not {p["video_id"] for p in train} & held
    train0, held0 = split_pairs(
        load_snapshot(plain["id"]), fraction=0.25
    )  # none recorded: the fraction
    assert {p["video_id"] for p in held0} == held and len(train0) == rec["train"]


def test_pandas_and_datasets_open_the_shard_folder(rows):
    pd = pytest.importorskip("pandas")
    manifest = create_snapshot("open")
    folder = get_store().local_path(manifest["shards"][0]["key"]).parent  # the shard folder
    df = pd.read_parquet(folder)
    assert len(df) == 120 and set(df["task"]) == {"T2V", "I2V", "V2V"}
    assert json.loads(df.sort_values("id")["target"].iloc[0])["video"]["clip_id"] == "c00"
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset(
        "parquet",
        data_files=str(folder / "*.parquet"),
        split="train",
        cache_dir=str(folder.parent.parent / "hf-cache"),
    )
    assert ds.num_rows == 120 and set(ds.column_names) >= {"id", "task", "query", "target", "split"}


def test_old_jsonl_snapshots_still_read_and_a_damaged_shard_is_refused(rows):
    store = get_store()
    old = [{k: v for k, v in _pair(i, i, f"c{i:02d}").items()} for i in range(3)]
    store.put_bytes(
        layout.pairs_jsonl_key("old"), "".join(json.dumps(p) + "\n" for p in old).encode()
    )
    store.put_bytes(
        layout.manifest_key("old"),
        json.dumps(
            {
                "id": "old",
                "name": "old",
                "counts": {},
                "pairs_key": layout.pairs_jsonl_key("old"),
                "splits": {},
            }
        ).encode(),
    )
    snap = load_snapshot("old")
    assert [p["id"] for p in snap.pairs] == ["p0000", "p0001", "p0002"] and snap.pairs[0][
        "split"
    ] == "train"
    manifest = create_snapshot("d")
    key = manifest["shards"][1]["key"]
    store.put_bytes(key, store.get_bytes(key)[:-7] + b"garbage")
    with pytest.raises(SnapshotCorrupt, match="checksum"):
        load_snapshot(manifest["id"])
    bad = {
        **_pair(1, 1, "c01"),
        "task": "X2Y",
    }  # a pair breaking the contract fails where it is read
    store.put_bytes(layout.pairs_jsonl_key("bad"), (json.dumps(bad) + "\n").encode())
    store.put_bytes(
        layout.manifest_key("bad"),
        json.dumps(
            {"id": "bad", "name": "bad", "pairs_key": layout.pairs_jsonl_key("bad")}
        ).encode(),
    )
    with pytest.raises(ValueError, match="task"):
        load_snapshot("bad")
