"""The stages on generated videos: video refs carry the rate their stored frames sample the clip
at (so stored frames embed like the clip's mp4), and a kept clip whose objects are not all stored
is never visible to pairs or snapshots."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from services.synth import media, objects, stages
from services.synth.snapshot import create_snapshot
from services.synth.sources import SourceItem
from shared.db import init_db, session_scope
from shared.db.models import Clip, Frame, Pair, Video
from shared.ids import stable_id
from shared.snapshots import iter_pairs, read_manifest
from shared.storage import LocalStore, get_store


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    from shared.world import generate

    out = tmp_path_factory.mktemp("raw")
    generate(out, 3, seed=5, workers=1)
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    return [
        {**r, "path": str(out / r["path"]), "sidecar": json.loads((out / r["sidecar"]).read_text())}
        for r in rows
    ]


def _item(row: dict) -> tuple[SourceItem, str]:
    return SourceItem(
        uri=row["path"], local_path=row["path"], raw_caption=row["caption"], sidecar=row["sidecar"]
    ), stable_id("video", row["path"])


def _synth(row: dict) -> str:
    item, vid = _item(row)
    stages.media_stage(item, vid, None)
    stages.caption_stage(vid)
    stages.pairs_stage(vid, hard_negatives=4)
    return vid


def _clips(**where) -> list[Clip]:  # noqa: ANN003
    with session_scope() as s:
        rows = s.scalars(select(Clip).filter_by(**where).order_by(Clip.start_ms)).all()
        s.expunge_all()
    return rows


def _video_sides(pair: dict) -> list[dict]:
    return [
        side["video"]
        for side in [pair["query"], pair["target"], *pair["hard_negatives"]]
        if "video" in side
    ]


def test_video_refs_carry_the_rate_their_frames_sample_the_clip(raw):
    init_db()
    vid = _synth(raw[0])
    with session_scope() as s:
        pairs = [
            {"query": p.query, "target": p.target, "hard_negatives": p.hard_negatives}
            for p in s.scalars(select(Pair))
        ]
        duration = s.get(Video, vid).duration_s
    spans = {c.id: (c.end_ms - c.start_ms) / 1000 for c in _clips(video_id=vid)}
    refs = [v for p in pairs for v in _video_sides(p)]
    assert refs and all("fps" in v for v in refs)
    for v in refs:
        span = duration if v["clip_id"].startswith("video:") else spans[v["clip_id"]]
        assert v["fps"] == pytest.approx(len(v["frames"]) / span, rel=1e-4)


def test_stored_frames_with_the_recorded_fps_embed_like_the_clip_file(
    raw, tiny_model_dir, tmp_path
):
    from shared.model import Embedder, EmbedInput, VideoFrames

    init_db()
    _synth(raw[0])
    with session_scope() as s:
        pair = next(p for p in s.scalars(select(Pair).where(Pair.task == "T2V")))
        ref = pair.target["video"]
    mp4 = tmp_path / "clip.mp4"
    get_store().download(f"clips/{ref['clip_id']}/clip.mp4", mp4)
    emb = Embedder(tiny_model_dir, device="cpu")
    stored, old, from_file = (
        EmbedInput(video=VideoFrames(ref["frames"], fps=ref["fps"])),
        EmbedInput(video=VideoFrames(ref["frames"])),
        EmbedInput(video=str(mp4)),
    )
    ts = [float(emb.collate([it])["second_per_grid_ts"][0]) for it in (stored, old, from_file)]
    # the same MRoPE time spacing as the clip's mp4 (up to where its decoder lands the 8 frames) ...
    assert ts[0] == pytest.approx(ts[2], rel=0.02)
    assert ts[1] != pytest.approx(
        ts[2], rel=0.02
    )  # ... which the default fps (no "fps" recorded) is not
    # (the tiny random model's cosine barely depends on the spacing: the check above is the sharp
    # one)
    v = emb.embed([stored, from_file])
    assert float(v[0] @ v[1]) >= 0.999


def _failing_put(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The first clip keyframe uploaded from now on fails (after that clip's mp4 and frames went
    up); returns the list that gets the failed clip's id."""
    real, victim = LocalStore.put_bytes, []

    def put_bytes(self, key, data, content_type="application/octet-stream"):  # noqa: ANN001, ANN202
        if key.startswith("clips/") and key.endswith("/key/00.jpg") and not victim:
            victim.append(key.split("/")[1])
            raise OSError("store unavailable")
        return real(self, key, data, content_type)

    monkeypatch.setattr(LocalStore, "put_bytes", put_bytes)
    return victim


def _visible_refs() -> set[str]:
    """Every clip a snapshot of all pairs names."""
    manifest = create_snapshot("all")
    pairs = iter_pairs(get_store(), read_manifest(get_store(), manifest["id"]))
    return {v["clip_id"] for pair in pairs for v in _video_sides(pair)}


@pytest.mark.parametrize(
    "handler_runs", [True, False], ids=["upload-fails", "worker-lost-mid-upload"]
)
def test_a_clip_whose_objects_are_not_all_stored_is_never_used(raw, monkeypatch, handler_runs):
    init_db()
    _synth(raw[0])
    real_put, real_unkeep = LocalStore.put_bytes, objects.unkeep
    victim = _failing_put(monkeypatch)
    if not handler_runs:  # a killed worker runs no handler: the clip stays kept, without Frame rows
        monkeypatch.setattr(objects, "unkeep", lambda *a, **k: None)
    item, vid = _item(raw[1])
    with pytest.raises(OSError, match="store unavailable"):
        stages.media_stage(item, vid, None)
    monkeypatch.setattr(
        LocalStore, "put_bytes", real_put
    )  # the store works again for the other videos
    monkeypatch.setattr(objects, "unkeep", real_unkeep)
    (victim,) = victim
    row = _clips(id=victim)[0]
    with session_scope() as s:
        assert s.scalars(select(Frame).where(Frame.clip_id == victim)).first() is None
    if handler_runs:  # not kept, with the reason, and what was uploaded is gone
        assert (
            not row.kept and "could not be stored" in row.reject_reason and row.object_key is None
        )
        assert not list(get_store().list(f"clips/{victim}/"))
    else:
        assert row.kept and list(get_store().list(f"clips/{victim}/"))  # partly uploaded
    _synth(raw[2])  # another video's hard negatives are drawn from the stored clips only
    with session_scope() as s:
        negs = [
            n["video"]["clip_id"]
            for p in s.scalars(select(Pair).where(Pair.video_id == raw_id(raw[2])))
            for n in p.hard_negatives
        ]
    assert negs and victim not in negs
    assert victim not in _visible_refs()
    # the retry stores the clip and keeps it; from then on it is used
    stages.media_stage(item, vid, None)
    row = _clips(id=victim)[0]
    assert (
        row.kept
        and row.reject_reason is None
        and len(list(get_store().list(f"clips/{victim}/"))) == 10
    )
    stages.caption_stage(vid)
    stages.pairs_stage(vid, hard_negatives=4)
    assert victim in _visible_refs()


def raw_id(row: dict) -> str:
    return _item(row)[1]


def test_hard_negatives_name_their_source_video_and_dedup_cluster(raw):
    """A consumer groups a hard negative like a positive from the ref alone; pair ids do not
    change."""
    init_db()
    for row in raw:
        _synth(row)
    clips = {c.id: c for c in _clips(kept=True)}
    with session_scope() as s:
        pairs = s.scalars(select(Pair)).all()
        s.expunge_all()
    negs = [n["video"] for p in pairs for n in p.hard_negatives]
    assert negs
    for v in negs:
        clip = clips[v["clip_id"]]
        assert (v["video_id"], v["dedup_cluster"]) == (clip.video_id, clip.dedup_cluster)
    # a pair whose target is that clip groups by the same (dedup cluster, video) as its
    # hard-negative ref
    by_target = {p.target["video"]["clip_id"]: p for p in pairs if p.task == "T2V"}
    for v in negs:
        assert (by_target[v["clip_id"]].dedup_cluster, by_target[v["clip_id"]].video_id) == (
            v["dedup_cluster"],
            v["video_id"],
        )
    # ids are those of refs without the descriptive fields (rows written before them keep theirs)
    for p in pairs:

        def bare(side: dict) -> str:
            video = side.get("video")
            if isinstance(video, dict):
                side = {
                    **side,
                    "video": {k: v for k, v in video.items() if k in ("clip_id", "frames")},
                }
            return json.dumps(side, sort_keys=True)

        assert p.id == stable_id(p.task, bare(p.query), bare(p.target))


def test_a_re_encode_fallback_is_logged_and_shown_in_the_job_status(raw, monkeypatch, caplog):
    from dataclasses import asdict

    from typer.testing import CliRunner

    from services.synth import tasks
    from services.synth.cli import app
    from services.synth.records import job_summary
    from shared.db import upsert
    from shared.db.models import Job, JobItem, JobState
    from shared.media import MediaError

    init_db()
    item, vid = _item(raw[0])

    def no_copy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise MediaError("packets without timestamps")

    monkeypatch.setattr(media, "copy_clips", no_copy)
    sent = []
    monkeypatch.setattr(tasks.app, "send_task", lambda *a, **k: sent.append(a))
    with session_scope() as s:
        s.add(Job(id="job-1", kind="synth", state=JobState.running, params={"source": "mem://"}))
        s.flush()
        upsert(
            s,
            JobItem,
            [
                {
                    "id": "item-1",
                    "job_id": "job-1",
                    "item_key": item.uri,
                    "state": "pending",
                    "attempts": 0,
                    "result": {"source": asdict(item), "video_id": vid, "source_id": None},
                }
            ],
        )
    task = type("Task", (), {"name": "synth.media"})()
    with caplog.at_level("WARNING", logger="services.synth.stages"):
        tasks._run(task, "media", "job-1", "item-1")
    assert sent and sent[0][0] == "synth.caption"  # the item went on to its captions
    assert any(
        "stream copy impossible" in r.getMessage() and "re-encoded" in r.getMessage()
        for r in caplog.records
    )
    summary = job_summary("job-1")
    kept = len(_clips(video_id=vid, kept=True))
    assert (
        kept
        and summary["clips_reencoded"]
        == summary["items"][0]["clips_reencoded"]
        == summary["clips"]
        == kept
    )
    assert any(
        n.startswith("media: stream copy impossible (packets without timestamps)")
        for n in summary["items"][0]["notes"]
    )
    out = CliRunner().invoke(app, ["status", "job-1"], env={"COLUMNS": "200"})
    assert out.exit_code == 0 and f"re-encoded {kept}" in out.output, out.output
