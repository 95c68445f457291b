"""`univr synth gc`: the clip and video objects no stored clip or pair needs go (what failed uploads
with failed cleanups left, marked by the row's ``object_key``, and objects no row names); stored
clips, other prefixes and anything newer than the grace period (a job writing now) stay."""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from services.synth import objects, stages
from services.synth.gc import NEVER_STORED, collect_garbage
from services.synth.sources import SourceItem
from shared.db import init_db, session_scope
from shared.db.models import Clip, Frame, Video, clip_stored, utcnow
from shared.ids import stable_id
from shared.storage import LocalStore, get_store

OLD = 3 * 24 * 3600  # seconds: older than the default grace period


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> list[SourceItem]:
    from shared.world import generate

    out = tmp_path_factory.mktemp("raw")
    generate(out, 2, seed=7, workers=1)
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    return [
        SourceItem(
            uri=str(out / r["path"]), local_path=str(out / r["path"]), raw_caption=r["caption"]
        )
        for r in rows
    ]


def _age(prefix: str, seconds: float = OLD, claims: bool = True) -> None:
    """Make the objects under ``prefix`` (and with ``claims``, every clip's claim) ``seconds``
    old."""
    store = get_store()
    t = time.time() - seconds
    for key in store.list(prefix):
        os.utime(store.local_path(key), (t, t))
    if claims:
        with session_scope() as s:
            s.execute(update(Clip).values(claimed_at=utcnow() - timedelta(seconds=seconds)))


def _broken_upload(item: SourceItem, monkeypatch: pytest.MonkeyPatch) -> str:
    """Media stage of ``item`` whose first clip's keyframe upload fails and whose cleanup fails
    too: that clip's mp4 and frames stay in the store, marked by its row. Returns its id."""
    real_put, real_remove, victim = LocalStore.put_bytes, objects.remove_objects, []

    def put_bytes(self, key, data, content_type="application/octet-stream"):  # noqa: ANN001, ANN202
        if key.endswith("/key/00.jpg") and not victim:
            victim.append(key.split("/")[1])
            raise OSError("store unavailable")
        return real_put(self, key, data, content_type)

    def remove_objects(store, cids):  # noqa: ANN001, ANN202
        raise OSError("store still unavailable")

    monkeypatch.setattr(LocalStore, "put_bytes", put_bytes)
    monkeypatch.setattr(objects, "remove_objects", remove_objects)
    with pytest.raises(OSError):
        stages.media_stage(item, stable_id("video", item.uri), None)
    monkeypatch.setattr(LocalStore, "put_bytes", real_put)
    monkeypatch.setattr(objects, "remove_objects", real_remove)
    return victim[0]


def _clip(cid: str) -> Clip:
    with session_scope() as s:
        row = s.get(Clip, cid)
        s.expunge_all()
    return row


def _stored_objects() -> set[str]:
    with session_scope() as s:
        stored = set(s.scalars(select(Clip.id).where(clip_stored())))
    return {k for k in get_store().list("clips/") if k.split("/")[1] in stored}


def test_gc_deletes_what_failed_uploads_left_and_nothing_live(raw, monkeypatch):
    init_db()
    good = stable_id("video", raw[0].uri)
    stages.media_stage(raw[0], good, None)
    victim = _broken_upload(raw[1], monkeypatch)
    store = get_store()
    row = _clip(victim)
    assert (
        not row.kept and row.object_key and len(list(store.list(f"clips/{victim}/"))) == 9
    )  # the leftover
    store.put_bytes("clips/no-such-clip/clip.mp4", b"orphan")  # objects no row names
    store.put_bytes("videos/no-such-video/frames/00.jpg", b"orphan")
    store.put_bytes("snapshots/s1/manifest.json", b"{}")  # not synthesis objects: never touched
    store.put_bytes("clips/README", b"not a clip's")
    live, everything = _stored_objects(), set(store.list(""))
    assert live and {k for k in everything if k.startswith(f"videos/{good}/")}

    # within the grace period (default a day) nothing is touched: a job may be writing it now
    report = collect_garbage()
    assert (
        report["objects_deleted"] == 0
        and report["skipped_recent"] == 3
        and set(store.list("")) == everything
    )
    _age("")
    dry = collect_garbage(dry_run=True)
    assert (
        set(store.list("")) == everything and _clip(victim).object_key
    )  # a dry run deletes nothing
    done = collect_garbage()
    garbage = {
        k
        for k in everything
        if k.startswith((f"clips/{victim}/", "clips/no-such-clip/", "videos/no-such-video/"))
    }
    assert set(store.list("")) == everything - garbage
    assert (
        {k: dry[k] for k in ("objects_deleted", "clips", "videos", "rows_unmarked")}
        == {k: done[k] for k in ("objects_deleted", "clips", "videos", "rows_unmarked")}
        == {"objects_deleted": len(garbage), "clips": 2, "videos": 1, "rows_unmarked": 1}
    )
    assert done["bytes_deleted"] > 0 and done["errors"] == []
    row = _clip(victim)
    assert row.object_key is None and row.frame_prefix is None and not row.kept
    assert _stored_objects() == live
    again = collect_garbage()
    assert again["objects_deleted"] == again["rows_unmarked"] == 0  # idempotent
    # the failed video's retry stores the clip again: gc left nothing it needs
    stages.media_stage(raw[1], stable_id("video", raw[1].uri), None)
    assert _clip(victim).kept and len(list(store.list(f"clips/{victim}/"))) == 10


def test_gc_leaves_a_clip_a_running_job_just_claimed(raw, monkeypatch):
    """A kept clip without Frame rows is still uploading, or its worker died: gc tells them apart by
    when it was claimed, even when the objects themselves are old (a retry overwriting them)."""
    init_db()
    vid = stable_id("video", raw[0].uri)
    stages.media_stage(raw[0], vid, None)
    with session_scope() as s:
        cid = s.scalars(
            select(Clip.id).where(Clip.video_id == vid, clip_stored()).order_by(Clip.start_ms)
        ).first()
        s.execute(
            Frame.__table__.delete().where(Frame.clip_id == cid)
        )  # claimed again, uploading now
    _age("", claims=False)
    report = collect_garbage(grace_s=3600)
    assert report["objects_deleted"] == 0 and report["skipped_recent"] == 1
    assert _clip(cid).kept and len(list(get_store().list(f"clips/{cid}/"))) == 10
    with session_scope() as s:  # claimed two hours ago and never stored: that attempt is over
        s.execute(
            update(Clip).where(Clip.id == cid).values(claimed_at=utcnow() - timedelta(hours=2))
        )
    report = collect_garbage(grace_s=3600)
    assert report["objects_deleted"] == 10 and report["clips"] == 1
    row = _clip(cid)
    assert not row.kept and row.reject_reason == NEVER_STORED and row.object_key is None
    assert list(get_store().list(f"clips/{cid}/")) == []


def test_gc_collects_the_frames_of_a_rejected_video_and_keeps_an_ok_one(raw):
    init_db()
    vid = stable_id("video", raw[0].uri)
    stages.media_stage(raw[0], vid, None)
    frames = sorted(get_store().list(f"videos/{vid}/"))
    assert frames
    _age("")
    assert collect_garbage()["objects_deleted"] == 0
    with session_scope() as s:  # e.g. a later run rejected every clip of it
        s.execute(update(Video).where(Video.id == vid).values(status="rejected"))
        s.execute(update(Clip).where(Clip.video_id == vid).values(kept=False))
    report = collect_garbage()
    assert report["videos"] == 1 and list(get_store().list(f"videos/{vid}/")) == []


def test_gc_command(raw, monkeypatch):
    from shared.cli import build_app

    init_db()
    victim = _broken_upload(raw[1], monkeypatch)
    _age("")
    runner = CliRunner()
    out = runner.invoke(build_app(), ["synth", "gc", "--dry-run", "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["dry_run"] and report["objects_deleted"] == 9 and report["rows_unmarked"] == 1
    assert len(list(get_store().list(f"clips/{victim}/"))) == 9
    out = runner.invoke(build_app(), ["synth", "gc"])
    assert (
        out.exit_code == 0
        and "deleted 9 object(s)" in out.output
        and "1 row(s) cleared" in out.output
    ), out.output
    assert not any(k.startswith(f"clips/{victim}/") for k in get_store().list("clips/"))
    out = runner.invoke(build_app(), ["synth", "gc", "--grace", "10"])
    assert "warning" in out.output and "hard_time_limit_s" in out.output


def test_gc_keeps_what_a_snapshot_names_even_without_rows():
    """A snapshot written straight to the store (imported; no clip rows) keeps its objects."""
    init_db()
    store = get_store()
    frames = [f"clips/w-1/frames/{i:02d}.jpg" for i in range(2)]
    for key in [
        *frames,
        "clips/w-1/keyframe.jpg",
        "videos/w/frames/00.jpg",
        "clips/w-2/frames/00.jpg",
    ]:
        store.put_bytes(key, b"jpg")
    pair = {
        "id": "p",
        "task": "I2V",
        "video_id": "w",
        "query": {"image": "clips/w-1/keyframe.jpg"},
        "target": {"video": {"clip_id": "video:w", "frames": ["videos/w/frames/00.jpg"]}},
        "hard_negatives": [{"video": {"clip_id": "w-1", "frames": frames}}],
    }
    store.put_bytes("snapshots/s/pairs.jsonl", (json.dumps(pair) + "\n").encode())
    store.put_bytes(
        "snapshots/s/manifest.json",
        json.dumps({"id": "s", "pairs_key": "snapshots/s/pairs.jsonl"}).encode(),
    )
    _age("")
    report = collect_garbage()
    assert (
        report["kept_for_snapshots"] == 2 and report["objects_deleted"] == 1
    )  # only w-2, which no snapshot names
    assert sorted(store.list("clips/")) == sorted([*frames, "clips/w-1/keyframe.jpg"])
    assert list(store.list("videos/")) == ["videos/w/frames/00.jpg"]
