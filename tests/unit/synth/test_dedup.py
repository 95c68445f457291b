"""Near-duplicates across videos: a clip is only ever rejected as the duplicate of a clip whose
objects are stored, so a clip whose upload fails (for good, or its worker dies mid-upload) takes no
other clip down with it; of two duplicates in flight at once exactly one is kept (on SQLite and on
PostgreSQL), and running a video again adds no duplicate."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from services.synth import objects, stages
from services.synth.sources import SourceItem
from shared.db import init_db, session_scope
from shared.db.models import Clip, clip_stored
from shared.ids import stable_id
from shared.storage import LocalStore, get_store


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> tuple[SourceItem, SourceItem]:
    """One generated video under two URIs: every moving clip of one is a duplicate of the
    other's."""
    from shared.world import generate

    out = tmp_path_factory.mktemp("twins")
    generate(out, 1, seed=5, workers=1)
    row = json.loads((out / "manifest.jsonl").read_text().splitlines()[0])
    a = out / row["path"]
    b = shutil.copy(a, out / "copy-of-a.mp4")
    return tuple(
        SourceItem(uri=str(p), local_path=str(p), raw_caption=row["caption"]) for p in (a, Path(b))
    )


def vid(item: SourceItem) -> str:
    return stable_id("video", item.uri)


def rows(item: SourceItem) -> list[Clip]:
    with session_scope() as s:
        got = s.scalars(
            select(Clip).where(Clip.video_id == vid(item)).order_by(Clip.start_ms)
        ).all()
        s.expunge_all()
    return got


def stored_spans() -> list[int]:
    """Start of every stored clip (a span stored twice appears twice)."""
    with session_scope() as s:
        return sorted(s.scalars(select(Clip.start_ms).where(clip_stored())))


def moving_spans(item: SourceItem) -> list[int]:
    return sorted(
        c.start_ms for c in rows(item) if not (c.reject_reason or "").startswith("static")
    )


def _during_first_upload(
    monkeypatch: pytest.MonkeyPatch, video_id: str, action, fail: bool
) -> None:  # noqa: ANN001
    """While the first clip of ``video_id`` is uploading (its mp4 and frames are up, its keyframe
    not yet), run ``action``; then that upload fails (``fail``) or goes on."""
    real, fired = LocalStore.put_bytes, []

    def put_bytes(self, key, data, content_type="application/octet-stream"):  # noqa: ANN001, ANN202
        if key.endswith("/key/00.jpg") and not fired:
            with session_scope() as s:
                owner = s.get(Clip, key.split("/")[1])
            if owner is not None and owner.video_id == video_id:
                fired.append(key)
                action()
                if fail:
                    raise OSError("store unavailable")
        return real(self, key, data, content_type)

    monkeypatch.setattr(LocalStore, "put_bytes", put_bytes)


@pytest.mark.parametrize(
    "handler_runs", [True, False], ids=["upload-fails", "worker-lost-mid-upload"]
)
def test_a_clip_whose_upload_fails_for_good_takes_no_duplicate_down_with_it(
    twins, monkeypatch, handler_runs
):
    init_db()
    a, b = twins
    if not handler_runs:  # a killed worker runs no handler: a's clip stays kept, never stored
        monkeypatch.setattr(objects, "unkeep", lambda *args, **kw: None)
    # b is processed while a's first clip is uploading; that upload then fails, and a's item fails
    # for good
    _during_first_upload(
        monkeypatch, vid(a), lambda: stages.media_stage(b, vid(b), None), fail=True
    )
    with pytest.raises(OSError, match="store unavailable"):
        stages.media_stage(a, vid(a), None)
    # b kept all its moving clips: none was rejected as the duplicate of a clip that never got
    # stored
    moving = moving_spans(b)
    assert moving and all(
        c.kept and c.reject_reason is None for c in rows(b) if c.start_ms in moving
    )
    assert stored_spans() == moving
    assert all(len(list(get_store().list(f"clips/{c.id}/"))) == 10 for c in rows(b) if c.kept)


def test_of_two_duplicates_in_flight_the_first_stored_is_kept_and_a_rerun_adds_nothing(
    twins, monkeypatch
):
    init_db()
    a, b = twins
    # b runs to the end while a's first clip is uploading (claimed, not stored); a's upload then
    # succeeds
    _during_first_upload(
        monkeypatch, vid(a), lambda: stages.media_stage(b, vid(b), None), fail=False
    )
    with pytest.raises(stages.Rejected, match="near-duplicate"):
        stages.media_stage(a, vid(a), None)  # every clip of a turns out a duplicate of b's
    first = rows(a)[0]
    assert not first.kept and first.reject_reason.startswith("near-duplicate of clip")
    assert (
        first.object_key is None and list(get_store().list(f"clips/{first.id}/")) == []
    )  # its uploads went
    assert stored_spans() == moving_spans(b)
    before = (stored_spans(), sorted(get_store().list("clips/")))
    monkeypatch.undo()
    for item in (b, a):  # both videos again (a resubmitted job): the same outcome, nothing added
        try:
            stages.media_stage(item, vid(item), None)
        except stages.Rejected:
            assert item is a
    assert (stored_spans(), sorted(get_store().list("clips/"))) == before


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_workers_storing_duplicates_at_once_keep_exactly_one(twins, monkeypatch, request, db):
    if db == "postgres":
        from shared.db.session import reset_engines

        monkeypatch.setenv("UNIVR_DATABASE__URL", request.getfixturevalue("postgres_url"))
        stages.get_settings.cache_clear()
        reset_engines()
        request.addfinalizer(reset_engines)
    init_db()
    a, b = twins
    both_uploaded = threading.Barrier(2, timeout=20)
    real = objects.upload_clip

    def upload(store, cand, clip_file):  # noqa: ANN001, ANN202
        real(store, cand, clip_file)
        if (
            cand["start"] == 0.0
        ):  # both first clips are claimed and uploaded before either is stored
            both_uploaded.wait()

    monkeypatch.setattr(objects, "upload_clip", upload)
    errors: list[BaseException] = []

    def work(item: SourceItem) -> None:
        try:
            stages.media_stage(item, vid(item), None)
        except stages.Rejected:
            pass
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(it,)) for it in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    spans = stored_spans()
    assert spans and spans == sorted(set(spans)) == moving_spans(a) == moving_spans(
        b
    )  # each span once
    clip_keys = {k.split("/")[1] for k in get_store().list("clips/")}
    with session_scope() as s:
        assert clip_keys == set(
            s.scalars(select(Clip.id).where(clip_stored()))
        )  # the loser's objects went
