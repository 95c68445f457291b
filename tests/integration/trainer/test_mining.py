"""Mined hard negatives over a whole snapshot (issue 16, item 2): no mined negative is its pair's
positive, a clip of its dedup cluster or a clip of its source video, although the prober ranks
exactly those first; every query gets its K; the cost is reported."""

from __future__ import annotations

import random

import numpy as np
import pytest

from shared.ids import stable_id
from shared.world import describe, render_frames, sample_spec

from .world_snapshot import FRAMES_PER_CLIP, _store_clip

SPECS = 24
K = 3


def _duplicates_snapshot() -> list[dict]:
    """Each scene rendered four times (different pixel noise): clips a, b share video and cluster;
    c shares the cluster only (another upload of it); d shares the video only (another cluster)."""
    from shared.storage import get_store

    store, rng, pairs = get_store(), random.Random(5), []
    for i in range(SPECS):
        spec = sample_spec(
            rng,
            f"s{i}",
            shots=1,
            n_objects=1,
            fps=FRAMES_PER_CLIP,
            size=(64, 64),
            shot_s=(1.0, 1.0),
        )
        for copy, video, cluster in (
            ("a", f"v{i}", f"c{i}"),
            ("b", f"v{i}", f"c{i}"),
            ("c", f"w{i}", f"c{i}"),
            ("d", f"v{i}", f"d{i}"),
        ):
            clip = f"s{i}{copy}"
            frames, keyframe = _store_clip(
                store, clip, render_frames(spec, noise_seed=i * 10 + ord(copy))
            )
            ref = {"clip_id": clip, "frames": frames, "video_id": video, "dedup_cluster": cluster}
            for task, query in (
                ("T2V", {"text": describe(spec, "concise")}),
                ("I2V", {"image": keyframe}),
            ):
                pairs.append(
                    {
                        "id": stable_id("pair", clip, task),
                        "task": task,
                        "video_id": video,
                        "dedup_cluster": cluster,
                        "query": query,
                        "target": {"video": ref},
                    }
                )
    return pairs


@pytest.mark.slow
def test_no_mined_negative_is_a_positive_or_same_cluster_or_same_video(tmp_path, monkeypatch):
    from services.trainer.mining import mine, prober_embed
    from shared.config import get_settings
    from shared.model import Embedder
    from shared.model.tiny import build_tiny_bundle

    monkeypatch.setenv("UNIVR_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    pairs = _duplicates_snapshot()
    prober = Embedder(str(build_tiny_bundle(tmp_path / "tiny")))
    calls: list[int] = []
    embed = prober_embed(prober)

    def counting(items):  # noqa: ANN001, ANN202
        calls.append(len(items))
        return embed(items)

    negatives, cost = mine(pairs, counting, {"T2V": K, "I2V": K})
    print(f"mined {cost}")
    assert cost["queries"] == len(pairs) and cost["candidates"] == 4 * SPECS
    assert cost["embedded"] == sum(calls) == len(pairs) + 4 * SPECS
    for task in ("T2V", "I2V"):  # how far the negatives are from the positives, per task
        spread = cost["spread"][task]
        assert spread["queries"] == 4 * SPECS and spread["negatives"] == K * 4 * SPECS
        assert 1 <= spread["distinct"] <= 4 * SPECS and spread["max_uses"] <= 4 * SPECS
        assert 0.0 <= spread["above_positive"] <= 1.0
    clip_of = {p["target"]["video"]["clip_id"]: p["target"]["video"] for p in pairs}
    for p in pairs:
        negs = negatives[p["id"]]
        assert len(negs) == K
        for n in negs:
            ref = clip_of[n["video"]["clip_id"]]
            assert n["video"]["clip_id"] != p["target"]["video"]["clip_id"]
            assert ref["dedup_cluster"] != p["dedup_cluster"] and ref["video_id"] != p["video_id"]
            assert n["dedup_cluster"] == ref["dedup_cluster"]  # grouped as data.hard_group expects
    # the guard is what keeps them out: a prober that puts every render of a scene (and its
    # caption and keyframe) nearest each other ranks the false negatives first, and still none
    # passes
    scene_of = {}
    for p in pairs:
        clip = p["target"]["video"]["clip_id"]
        scene_of[p["query"].get("text") or p["query"]["image"]] = scene_of[clip] = int(clip[1:-1])

    def oracle(items):  # noqa: ANN001, ANN202
        noise = np.random.default_rng(len(items)).normal(0, 0.05, (len(items), SPECS))
        rows = np.eye(SPECS)[[_scene(it, scene_of) for it in items]] + noise
        return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)

    negatives, _ = mine(pairs, oracle, {"T2V": K, "I2V": K})
    allowed = {
        "a": set(),
        "b": set(),
        "c": {"d"},
        "d": {"c"},
    }  # own-scene renders neither guard bars
    for p in pairs:
        clip = p["target"]["video"]["clip_id"]
        negs = negatives[p["id"]]
        assert len(negs) == K
        same_scene = [n["video"]["clip_id"][-1] for n in negs if _scene_clip(n) == int(clip[1:-1])]
        assert same_scene == sorted(allowed[clip[-1]])  # the prober's nearest allowed one is taken


def _scene_clip(neg: dict) -> int:
    return int(neg["video"]["clip_id"][1:-1])


def _scene(item, scene_of: dict) -> int:  # noqa: ANN001
    if item.video is not None:
        return scene_of[item.video.keys[0].split("/")[1]]
    if item.image:
        return scene_of[item.image.removeprefix("store://")]
    return scene_of[item.text]
