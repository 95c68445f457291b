"""Visual inputs: the frame cache (LRU eviction), frames resized to the pixel budget before caching,
the sampling fps, the token counts batching relies on, and stable input keys for embedding
caches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shared.media import MediaError
from shared.media.frames import sample_frames
from shared.model import EmbedInput, VideoFrames, item_key
from shared.model.visual import (
    FrameCache,
    PixelBudget,
    VideoBudget,
    image_tokens_estimate,
    resolve_image,
    resolve_video,
    video_tokens_estimate,
)
from tests.helpers import small_videos

BUDGET = VideoBudget(
    128 * 28 * 28, 200 * 28 * 28, 90_316_800
)  # the reference's, no processor limits
IMAGE = PixelBudget(4 * 28 * 28, 200 * 28 * 28)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    return small_videos(tmp_path_factory.mktemp("vids"), 3, seed=2, shots=1, size=(320, 240))


def test_frame_cache_evicts_the_least_recently_used():
    cache = FrameCache(capacity=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.put("c", 3)  # evicts "b"
    assert (
        len(cache) == 2 and cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    )
    assert (cache.hits, cache.misses) == (3, 1)
    assert cache.peek("a") == 1 and (cache.hits, cache.misses) == (3, 1)  # peek counts nothing
    cache.put("a", 10)  # replacing keeps one entry
    assert len(cache) == 2 and cache.get("a") == 10


def test_zero_capacity_caches_nothing():
    cache = FrameCache(capacity=0)
    cache.put("a", 1)
    assert len(cache) == 0 and cache.get("a") is None


def test_resolve_video_caches_resized_frames_and_evicts(videos):
    cache = FrameCache(capacity=1)
    first = resolve_video(str(videos[0]), 8, 1.0, cache, BUDGET)
    h, w = BUDGET.fit(240, 320, 8)
    assert (h, w) == (280, 392)  # enlarged to the reference's video minimum, 128·28·28
    assert (
        first.frames.shape == (8, h, w, 3) and h * w <= BUDGET.max_pixels and h % 28 == w % 28 == 0
    )
    assert resolve_video(Path(videos[0]), 8, 1.0, cache, BUDGET) is first  # str and Path: one entry
    assert (cache.hits, cache.misses) == (1, 1)
    resolve_video(str(videos[1]), 8, 1.0, cache, BUDGET)  # evicts videos[0]
    again = resolve_video(str(videos[0]), 8, 1.0, cache, BUDGET)
    assert again is not first and np.array_equal(again.frames, first.frames)
    assert (cache.hits, cache.misses) == (1, 3)
    # another budget or frame count is another entry, not a stale hit
    small = resolve_video(
        str(videos[0]), 8, 1.0, cache, VideoBudget(4 * 28 * 28, 16 * 28 * 28, 90_316_800)
    )
    assert small.frames.shape[1] * small.frames.shape[2] <= 16 * 28 * 28


def test_video_fps_is_frames_over_duration_as_stored_frames_carry_it(videos, tmp_path):
    """One fps per clip (SPEC §6.3: 8 / duration): an mp4 given to the embedder gets the fps its
    stored frames get from synth (``sampling_fps(8, decoded duration)``) and the indexer — not the
    spacing of the first and last sampled frames, which sits on the source's frame grid (~1-2 % off
    on these clips)."""
    from shared.media.analysis import decode_once
    from shared.media.clip import copy_clips
    from shared.media.frames import sampling_fps

    for path in videos:
        stored = sampling_fps(
            8, decode_once(path, 32, 64).duration_s
        )  # what synth records for the video
        _, times = sample_frames(path, 8)
        assert 7 / (times[-1] - times[0]) != pytest.approx(
            stored, rel=1e-3
        )  # the old definition disagrees
        assert resolve_video(str(path), 8, 1.0, FrameCache(), BUDGET).fps == stored
    # a clip cut by stream copy (edit list hiding the pre-roll): its stored frames' fps uses its
    # span
    times = decode_once(videos[0], 32, 64).times
    mid = float(times[len(times) // 2])
    whole = float(times[-1] + (times[1] - times[0]))
    for (a, b), clip in zip(
        [(0.0, mid), (mid, whole)],
        copy_clips(videos[0], [(0.0, mid), (mid, whole)], [tmp_path / "a.mp4", tmp_path / "b.mp4"]),
        strict=True,
    ):
        assert resolve_video(str(clip), 8, 1.0, FrameCache(), BUDGET).fps == pytest.approx(
            sampling_fps(8, b - a), rel=1e-4
        )
    arr = np.zeros((5, 56, 56, 3), np.uint8)
    assert resolve_video(arr, 8, 1.0, FrameCache(), BUDGET).fps == 1.0
    assert (
        resolve_video(arr, 8, 1.0, FrameCache(), BUDGET).frames.shape[0] == 8
    )  # sampled to num_frames


def test_stored_frames_read_only_the_sampled_keys():
    import io

    from shared.storage import get_store

    store = get_store()
    keys = [f"clips/z/frames/{i:02d}.png" for i in range(16)]
    picks = [0, 2, 4, 6, 9, 11, 13, 15]  # round(linspace(0, 15, 8)); the other keys do not exist
    for i in picks:
        buf = io.BytesIO()
        Image.fromarray(np.full((28, 56, 3), i * 15, np.uint8)).save(buf, format="PNG")
        store.put_bytes(keys[i], buf.getvalue())
    video = resolve_video(VideoFrames(keys), 8, 1.0, FrameCache(), BUDGET)
    assert video.frames.shape[0] == 8 and [int(f[0, 0, 0]) for f in video.frames] == [
        i * 15 for i in picks
    ]
    with pytest.raises(MediaError, match="no frame keys"):
        resolve_video(VideoFrames([]), 8, 1.0, FrameCache(), BUDGET)


def test_token_counts_match_the_prepared_pixels(videos):
    video = resolve_video(str(videos[0]), 8, 1.0, FrameCache(), BUDGET)
    t, h, w = video.frames.shape[:3]
    assert video.tokens() == t // 2 * (h // 28) * (w // 28)
    assert video_tokens_estimate(str(videos[0]), 8, FrameCache(), BUDGET) == video.tokens()
    assert (
        video_tokens_estimate(np.zeros((3, 240, 320, 3), np.uint8), 8, FrameCache(), BUDGET)
        == video.tokens()
    )
    img = Image.new("RGB", (640, 480))
    assert image_tokens_estimate(img, IMAGE) == IMAGE.tokens(480, 640) <= 200
    assert (
        video_tokens_estimate("/no/such/file.mp4", 8, FrameCache(), BUDGET) == 0
    )  # decode reports it later


def test_video_budget_is_the_reference_sizing_then_the_processor_limits():
    # qwen-vl-utils: a 320x240 frame is enlarged to >= 128·28·28 px; a 1920x1080 one shrunk to
    # <= 200·28·28; 8 frames -> 4 temporal groups
    assert BUDGET.tokens(240, 320, 8) == 4 * 10 * 14 == 560
    assert BUDGET.fit(1080, 1920, 8) == (280, 504) and BUDGET.tokens(1080, 1920, 8) == 4 * 10 * 18
    # the whole video's budget: many frames share it, never below 1.05 x the minimum per frame
    dense = VideoBudget(128 * 28 * 28, 768 * 28 * 28, 16384 * 28 * 28)
    assert dense.frame_max(8) == 768 * 28 * 28 and dense.frame_max(512) == int(128 * 28 * 28 * 1.05)
    assert dense.frame_max(128) == 16384 * 28 * 28 / 128 * 2
    # a checkpoint's processor with small limits resizes the reference's frames again
    clamped = VideoBudget(
        128 * 28 * 28, 200 * 28 * 28, 90_316_800, PixelBudget(56 * 56, 16 * 28 * 28)
    )
    assert clamped.model_size(240, 320, 8) == (84, 112) and clamped.tokens(240, 320, 8) == 4 * 3 * 4
    # frames are stored at the size the reference shrinks them to, never enlarged
    assert BUDGET.storage_size(1080, 1920, 8) == (280, 504)
    assert BUDGET.storage_size(240, 320, 8) == (240, 320) and BUDGET.storage_size(64, 64, 8) == (
        64,
        64,
    )


def test_bad_visual_inputs_say_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="even"):
        resolve_video(np.zeros((8, 56, 56, 3), np.uint8), 7, 1.0, FrameCache(), BUDGET)
    with pytest.raises(ValueError, match="uint8"):
        resolve_video(np.zeros((8, 56, 56, 3), np.float32), 8, 1.0, FrameCache(), BUDGET)
    with pytest.raises(TypeError, match="unsupported video input"):
        resolve_video(42, 8, 1.0, FrameCache(), BUDGET)
    with pytest.raises(MediaError, match="no such video file"):
        resolve_video(str(tmp_path / "missing.mp4"), 8, 1.0, FrameCache(), BUDGET)
    with pytest.raises(ValueError, match="uint8"):
        resolve_image(np.zeros((8, 8, 3), np.float64))
    with pytest.raises(MediaError, match="cannot read image"):
        resolve_image(str(tmp_path / "missing.jpg"))
    with pytest.raises(MediaError, match="cannot read stored image store://nope.png"):
        resolve_image("store://nope.png")
    with pytest.raises(TypeError, match="unsupported image input"):
        resolve_image(3.5)


def test_item_key_is_stable_and_content_based():
    def pil(value: int) -> Image.Image:
        return Image.fromarray(np.full((8, 8, 3), value, np.uint8))

    # the same content in different objects: the same key (no object ids, no reprs of addresses)
    assert item_key(EmbedInput(image=pil(3))) == item_key(EmbedInput(image=pil(3)))
    assert item_key(EmbedInput(image=pil(3))) != item_key(EmbedInput(image=pil(4)))
    assert item_key(EmbedInput(text="a", video="x.mp4")) == item_key(
        EmbedInput(text="a", video=Path("x.mp4"))
    )
    keys = VideoFrames(["clips/a/00.jpg", "clips/a/01.jpg"])
    assert item_key(EmbedInput(video=keys)) == item_key(
        EmbedInput(video=VideoFrames(list(keys.keys)))
    )
    # the same bytes in another shape, dtype, slot or role: another key
    flat = np.zeros((2, 6, 3), np.uint8)
    assert item_key(EmbedInput(image=flat)) != item_key(EmbedInput(image=flat.reshape(6, 2, 3)))
    assert item_key(EmbedInput(video=np.zeros((2, 4, 4, 3), np.uint8))) != item_key(
        EmbedInput(video=np.zeros((2, 4, 4, 3), np.int8))
    )
    assert item_key(EmbedInput(image="x.png")) != item_key(EmbedInput(video="x.png"))
    assert item_key(EmbedInput(text="a", instruction="b")) != item_key(
        EmbedInput(text="b", instruction="a")
    )
    assert item_key(EmbedInput(video=keys)) != item_key(
        EmbedInput(video=VideoFrames(keys.keys, fps=2.0))
    )
    key = item_key(EmbedInput(text="a red circle"))
    assert len(key) == 64 and int(key, 16) >= 0


def test_embed_input_rejects_bad_fields():
    with pytest.raises(ValueError, match="at least one"):
        EmbedInput()
    with pytest.raises(TypeError, match="text must be a string"):
        EmbedInput(text=3)
    with pytest.raises(TypeError, match="unsupported visual input"):
        item_key(EmbedInput(image=3.5))


def test_frame_cache_is_safe_from_many_threads():
    """The API embeds from several threads through one cache: lookups, inserts and evictions race.
    A tiny switch interval makes the interpreter change threads between any two steps."""
    import sys
    import threading

    cache = FrameCache(capacity=8)
    n_threads, rounds, errors = 8, 20000, []
    start = threading.Barrier(n_threads)

    def hammer(t: int) -> None:
        try:
            start.wait()
            for i in range(rounds):
                key = ("file", (t * 7 + i) % 24)
                if cache.get(key) is None:
                    cache.put(key, key[1])
                assert cache.peek(key) in (None, key[1])
                assert len(cache) <= 8  # an insert and its eviction are one step
        except Exception as exc:  # noqa: BLE001 - reported below, with the thread's error
            errors.append(repr(exc))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=hammer, args=(t,)) for t in range(n_threads)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert cache.hits + cache.misses == n_threads * rounds  # no lost counts
    assert len(cache) == 8
