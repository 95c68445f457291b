"""The procedural world: deterministic, rendered as specified, described truthfully."""

from __future__ import annotations

import json
import random

import av
import numpy as np
import pytest

from shared.media.analysis import decode_once, detect_cuts
from shared.world import describe, describe_frame, generate, plan, render, sample_spec
from shared.world.spec import sub_spec


def test_plan_is_deterministic_for_a_seed():
    assert plan(12, seed=5, failures=True) == plan(12, seed=5, failures=True)
    assert plan(12, seed=5) != plan(12, seed=6)


def test_rendered_video_matches_its_sidecar(tmp_path):
    spec = sample_spec(random.Random(1), "v", shots=3)
    path = render(spec, tmp_path / "v.mp4")
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = sum(1 for _ in c.decode(s))
        assert (s.codec_context.width, s.codec_context.height) == (spec["width"], spec["height"])
    assert frames == round(spec["duration_s"] * spec["fps"])


def test_cuts_are_visible_where_the_sidecar_says(tmp_path):
    hits = total = 0
    rng = random.Random(3)
    for i in range(6):
        spec = sample_spec(rng, f"c{i}", shots=3)
        an = decode_once(render(spec, tmp_path / f"c{i}.mp4"), 32, 64)
        found = detect_cuts(an.small, an.times, 0.3)
        total += len(spec["cuts"])
        hits += sum(any(abs(f - c) < 0.3 for f in found) for c in spec["cuts"])
    assert hits >= 0.8 * total


def test_failure_cases_are_what_they_claim(tmp_path):
    vids = generate(tmp_path, 20, seed=2, failures=True, workers=1)
    by_kind = {v.failure: v for v in vids if v.failure}
    assert set(by_kind) == {
        "static",
        "near_duplicate",
        "mismatched_caption",
        "truncated",
        "garbage",
        "empty",
    }
    assert by_kind["empty"].path.stat().st_size == 0
    with pytest.raises(av.error.InvalidDataError):
        av.open(str(by_kind["garbage"].path))
    an = decode_once(by_kind["static"].path, 32, 64)
    assert np.abs(np.diff(an.small, axis=0)).mean() < 3.0  # only encoder noise
    dup = by_kind["near_duplicate"].sidecar
    assert (
        dup["duplicate_of"] in {v.id for v in vids}
        and dup["shots"] == next(v for v in vids if v.id == dup["duplicate_of"]).sidecar["shots"]
    )
    rows = [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == len(vids) and all((tmp_path / r["path"]).exists() for r in rows)


def test_descriptions_name_what_is_there():
    spec = sample_spec(random.Random(4), "d", shots=1, n_objects=1)
    obj = spec["shots"][0]["objects"][0]
    for style in ("concise", "spatial", "rich", "keywords"):
        text = describe(spec, style)
        assert obj["color"] in text and obj["shape"] in text, style
    assert obj["color"] in describe_frame(spec, 0.1) or obj["appear_s"] > 0.1


def test_event_order_changes_temporal_but_not_spatial_text():
    spec = sample_spec(random.Random(8), "o", shots=1, n_objects=2)
    other = json.loads(json.dumps(spec))
    ev = other["shots"][0]["events"]
    if len(ev) < 2:
        ev.append(dict(ev[0], kind="disappears", t_s=ev[0]["t_s"] + 1))
        spec["shots"][0]["events"] = list(ev)
    other["shots"][0]["events"] = list(reversed(spec["shots"][0]["events"]))
    assert describe(spec, "spatial") == describe(other, "spatial")
    assert describe(spec, "temporal") != describe(other, "temporal")


def test_sub_spec_keeps_only_the_span():
    spec = sample_spec(random.Random(9), "s", shots=3)
    a, b = spec["shots"][1]["start_s"], spec["shots"][1]["end_s"]
    sub = sub_spec(spec, a, b)
    assert (
        len(sub["shots"]) == 1 and sub["shots"][0]["background"] == spec["shots"][1]["background"]
    )
    assert sub["duration_s"] == pytest.approx(b - a)
