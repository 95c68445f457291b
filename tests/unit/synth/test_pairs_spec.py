"""Pair construction as SPEC §3.3–3.4 builds it, one rule per test (each fails if its rule is
reverted): one sampled caption per T2V pair by default (``synth.t2v_styles=sample``, ``all``
selectable); T2T from two captions the T2V pair did not use; T2I from one of the keyframe's
captions; a frame of the clip (its keyframe) and the clip itself go with their *whole video*: I2V
(frame → video), TI2V (text + frame → video), TV2V (text + clip → video), V2V (clip → video)."""

from __future__ import annotations

from typing import Any

import pytest

from services.synth import pairs
from services.synth.captioner import FRAME_STYLES, VIDEO_STYLES
from shared import layout
from shared.config import SynthSettings, get_settings
from shared.db.models import Caption, Clip

N = 8
VIDEO = "vid-1"


def _clip(i: int) -> Clip:
    return Clip(
        id=f"clip-{i}",
        video_id=VIDEO,
        start_ms=i * 4000,
        end_ms=i * 4000 + 4000,
        dedup_cluster=f"cluster-{i}",
    )


def _captions(clip: Clip, frame_styles: bool = True) -> dict[str, Caption]:
    styles = list(VIDEO_STYLES) + (list(FRAME_STYLES.values()) if frame_styles else ["frame"])
    cc = {
        s: Caption(style=s, text=f"{clip.id} {s}", info_profile="temporal", meta={}) for s in styles
    }
    cc["composed_image"] = Caption(
        style="composed_image", text="ti2v", meta={"strategy": "scene_change"}
    )
    cc["composed_video"] = Caption(
        style="composed_video", text="tv2v", meta={"relation": "viewpoint_change"}
    )
    return cc


@pytest.fixture
def mode(monkeypatch):  # noqa: ANN001, ANN201
    """Sets synth.t2v_styles (None: the default)."""

    def set_mode(value: str | None) -> None:
        if value is None:
            monkeypatch.delenv("UNIVR_SYNTH__T2V_STYLES", raising=False)
        else:
            monkeypatch.setenv("UNIVR_SYNTH__T2V_STYLES", value)
        get_settings.cache_clear()

    yield set_mode
    get_settings.cache_clear()


def _pairs(clips: list[Clip], frame_styles: bool = True) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def add(task, domain, clip, query, target, meta=None):  # noqa: ANN001, ANN202
        rows.append(
            {"task": task, "clip": clip.id, "query": query, "target": target, "meta": meta or {}}
        )

    whole = pairs._whole_video(VIDEO, None, N)
    for clip in clips:
        pairs._clip_pairs(add, clip, _captions(clip, frame_styles), whole, len(clips), N)
    return rows


def _of(rows: list[dict[str, Any]], task: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["task"] == task]


def test_the_default_samples_one_caption_style_per_t2v_pair(mode):
    mode(None)
    assert SynthSettings().t2v_styles == "sample"
    clips = [_clip(i) for i in range(12)]
    t2v = _of(_pairs(clips), "T2V")
    assert sorted(r["clip"] for r in t2v) == sorted(c.id for c in clips)  # one per clip
    styles = {r["meta"]["style"] for r in t2v}
    assert styles <= set(VIDEO_STYLES) and len(styles) > 1  # sampled, not always the same one
    for r in t2v:  # the query is the caption of the style recorded, the target the clip
        assert r["query"]["text"] == f"{r['clip']} {r['meta']['style']}"
        assert r["target"]["video"]["clip_id"] == r["clip"]
    assert _pairs(clips) == _pairs(clips)  # seeded: the same pairs each run


def test_all_stays_selectable(mode):
    mode("all")
    rows = _pairs([_clip(0)])
    assert sorted(r["meta"]["style"] for r in _of(rows, "T2V")) == sorted(VIDEO_STYLES)
    (t2t,) = _of(rows, "T2T")
    assert (t2t["query"]["text"], t2t["target"]["text"]) == ("clip-0 concise", "clip-0 rich")
    (t2i,) = _of(rows, "T2I")
    assert t2i["meta"]["style"] == "frame"


def test_t2t_pairs_two_captions_the_t2v_pair_did_not_use(mode):
    mode("sample")
    for i in range(12):
        rows = _pairs([_clip(i)])
        (t2v,) = _of(rows, "T2V")
        (t2t,) = _of(rows, "T2T")
        q, t = t2t["meta"]["style"].split(">")
        assert q != t and t2v["meta"]["style"] not in (q, t)
        assert {q, t} <= set(VIDEO_STYLES)
        assert (t2t["query"]["text"], t2t["target"]["text"]) == (f"clip-{i} {q}", f"clip-{i} {t}")


def test_t2i_pairs_one_of_the_keyframes_captions_with_the_keyframe(mode):
    mode("sample")
    seen = set()
    for i in range(12):
        (t2i,) = _of(_pairs([_clip(i)]), "T2I")
        seen.add(t2i["meta"]["style"])
        assert t2i["target"] == {"image": layout.keyframe_key(f"clip-{i}")}
        assert t2i["query"]["text"] == f"clip-{i} {t2i['meta']['style']}"
    assert seen <= set(FRAME_STYLES.values()) and len(seen) > 1
    # a captioner that writes one frame style (the template's) gives that one
    (t2i,) = _of(_pairs([_clip(0)], frame_styles=False), "T2I")
    assert t2i["meta"]["style"] == "frame"


@pytest.mark.parametrize("value", [None, "all"])
def test_frame_and_clip_pairs_target_the_whole_video(mode, value):
    """SPEC §3.3: (frame f_jk, its video v_j) and (clip c_jl, its video v_j); §3.4: the composed
    queries' target is that video. Every clip of a video gives them, the reference the clip's."""
    mode(value)
    clips = [_clip(i) for i in range(3)]
    rows = _pairs(clips)
    whole = {
        "clip_id": layout.video_ref(VIDEO),
        "frames": layout.video_frame_keys(VIDEO, N),
        "video_id": VIDEO,
    }
    for task in ("I2V", "TI2V", "TV2V", "V2V"):
        got = _of(rows, task)
        assert sorted(r["clip"] for r in got) == [c.id for c in clips], task
        for r in got:
            target = {k: r["target"]["video"][k] for k in whole}
            assert target == whole, task
    for r in _of(rows, "I2V") + _of(rows, "TI2V"):  # the query image is a frame of the clip
        assert r["query"]["image"] == layout.keyframe_key(r["clip"])
    for r in _of(rows, "TV2V") + _of(rows, "V2V"):  # the reference is the clip itself
        assert r["query"]["video"]["clip_id"] == r["clip"]
    assert {r["meta"]["strategy"] for r in _of(rows, "TI2V")} == {"scene_change"}
    assert {r["meta"]["relation"] for r in _of(rows, "TV2V")} == {"viewpoint_change"}
