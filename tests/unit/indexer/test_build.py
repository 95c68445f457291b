"""Index builds on a fake embedder: payloads, scopes, the deterministic collection, resuming an
interrupted build without --version, reusing a finished one, refusing a foreign collection."""

from __future__ import annotations

import pytest

from services.indexer.build import build_index
from services.indexer.collections import collection_metadata, collection_name, scope
from services.indexer.corpus import video_point_id


def _payloads(client, version):  # noqa: ANN001, ANN202
    return {str(p.id): p.payload for p in client.scroll(version, limit=1000, with_payload=True)[0]}


def test_a_build_indexes_kept_clips_and_their_videos_with_payloads(corpus, qdrant, fake_embedder):
    r = build_index(embedder=fake_embedder, client=qdrant)
    assert r["version"] == collection_name(fake_embedder.model_id, scope())
    assert r["points"] == r["expected"] == len(corpus["kept"]) + 3 == r["embedded"]
    pay = _payloads(qdrant, r["version"])
    rejected = next(c for c in corpus["clips"] if not c["kept"])
    assert rejected["id"] not in pay
    clip = pay[corpus["kept"][0]["id"]]
    assert (
        clip["kind"] == "clip"
        and clip["object_key"].endswith("/clip.mp4")
        and clip["source_uri"] == "s3://univr/raw/"
    )
    assert (
        clip["dataset"] == ["mini"]
        and clip["snapshot"] == ["snap1"]
        and clip["caption"].startswith("caption of")
    )
    v0, v1, v2 = (pay[video_point_id(v["id"])] for v in corpus["videos"])
    assert (
        v0["kind"] == "video" and v0["object_key"] == "raw/v0.mp4"
    )  # in the bucket: it gets a presigned URL
    assert v2["object_key"] is None  # a local source file outside the store has no URL
    assert v0["dataset"] == ["mini"] and v1["dataset"] == ["mini"] and v2["dataset"] == []
    meta = collection_metadata(qdrant, r["version"])
    assert meta["model_id"] == fake_embedder.model_id and meta["source"] is None


@pytest.mark.parametrize("which", ["id", "uri"])
def test_a_build_scoped_to_a_source(corpus, qdrant, fake_embedder, which):
    src = corpus["sources"][1]
    r = build_index(embedder=fake_embedder, client=qdrant, source=src[which])
    pay = _payloads(qdrant, r["version"])
    assert r["points"] == 2 + 1 and {p["source"] for p in pay.values()} == {src["id"]}
    assert r["version"] != collection_name(fake_embedder.model_id, scope())


@pytest.mark.parametrize("name", ["mini", "snap1"])
def test_a_build_scoped_to_a_dataset(corpus, qdrant, fake_embedder, name):
    r = build_index(embedder=fake_embedder, client=qdrant, dataset=name)
    pay = _payloads(qdrant, r["version"])
    videos = {v["id"] for v in corpus["videos"][:2]}
    assert {p["video_id"] for p in pay.values()} == videos
    assert (
        r["points"] == 3 + 2
    )  # the first video's two clips, the second (whole) video's clip, two video points


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"source": "s3://nowhere/"}, "no source"), ({"dataset": "nope"}, "no dataset")],
)
def test_an_unknown_scope_is_refused_before_any_work(corpus, qdrant, fake_embedder, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_index(embedder=fake_embedder, client=qdrant, **kwargs)
    assert fake_embedder.batches == [] and not qdrant.get_collections().collections


def test_an_interrupted_build_resumes_without_version_then_is_reused(
    corpus, qdrant, fake_embedder, monkeypatch
):
    from shared.config import get_settings
    from shared.db import session_scope
    from shared.db.models import IndexVersion

    monkeypatch.setattr(get_settings().vectors, "upsert_batch", 3)
    total = len(corpus["kept"]) + 3
    fake_embedder.fail_after_batches = 1
    with pytest.raises(RuntimeError, match="interrupted"):
        build_index(embedder=fake_embedder, client=qdrant)
    version = collection_name(fake_embedder.model_id, scope())
    with session_scope() as s:
        assert s.get(IndexVersion, version).state == "building"
    assert qdrant.count(version).count == 3
    fake_embedder.fail_after_batches = None
    r = build_index(
        embedder=fake_embedder, client=qdrant
    )  # no version given: it finds the interrupted one
    assert (
        r["version"] == version
        and r["resumed"]
        and r["embedded"] == total - 3
        and r["points"] == total
    )
    again = build_index(embedder=fake_embedder, client=qdrant)
    assert again["reused"] and again["embedded"] == 0 and again["points"] == total
    assert fake_embedder.batches == [3, 3, 2]
    with session_scope() as s:
        row = s.get(IndexVersion, version)
        assert row.state == "ready" and row.points == total


def test_a_build_killed_after_its_last_upsert_is_resumed_with_nothing_to_embed(
    corpus, qdrant, fake_embedder
):
    """The kill landed between the last upsert and marking the version ready: the takeover finds
    every point and a version still building; it embeds nothing and says it resumed."""
    from shared.db import session_scope
    from shared.db.models import IndexVersion

    first = build_index(embedder=fake_embedder, client=qdrant)
    with session_scope() as s:
        s.get(IndexVersion, first["version"]).state = "building"
    r = build_index(embedder=fake_embedder, client=qdrant)
    assert r["resumed"] and r["embedded"] == 0 and r["points"] == first["points"]
    with session_scope() as s:
        assert s.get(IndexVersion, first["version"]).state == "ready"
    assert not build_index(embedder=fake_embedder, client=qdrant)["resumed"]  # ready: reused


def test_a_collection_of_another_model_is_not_written_into(corpus, qdrant, fake_embedder):
    from tests.unit.indexer.conftest import FakeEmbedder

    build_index(embedder=fake_embedder, client=qdrant, version="univr-mine")
    with pytest.raises(ValueError, match="model_id"):
        build_index(
            embedder=FakeEmbedder(model_id="other-model"), client=qdrant, version="univr-mine"
        )


def test_an_empty_corpus_is_refused(qdrant, fake_embedder):
    with pytest.raises(ValueError, match="nothing to index"):
        build_index(embedder=fake_embedder, client=qdrant)


def test_stored_frames_are_embedded_at_the_rate_they_sample_their_clip(
    corpus, qdrant, fake_embedder
):
    seen = []
    embed = fake_embedder.embed
    fake_embedder.embed = lambda items: (seen.extend(it.video for it in items), embed(items))[1]
    build_index(embedder=fake_embedder, client=qdrant)
    fps = {v.keys[0].split("/")[1]: v.fps for v in seen}
    for c in corpus["kept"]:  # 8 frames over the clip's span, as from its mp4 (SPEC §6.3)
        assert fps[c["id"]] == pytest.approx(8 / ((c["end_ms"] - c["start_ms"]) / 1000))
    assert fps[corpus["videos"][0]["id"]] == pytest.approx(
        8 / 6.0
    )  # the whole video: 8 over its duration


def test_a_kept_clip_whose_objects_are_not_stored_is_not_indexed(corpus, qdrant, fake_embedder):
    from sqlalchemy import delete

    from shared.db import session_scope
    from shared.db.models import Frame

    lost = corpus["kept"][0]["id"]  # claimed as kept, its upload never finished: no Frame rows
    with session_scope() as s:
        s.execute(delete(Frame).where(Frame.clip_id == lost))
    r = build_index(embedder=fake_embedder, client=qdrant)
    assert r["points"] == len(corpus["kept"]) - 1 + 3 and lost not in _payloads(
        qdrant, r["version"]
    )
