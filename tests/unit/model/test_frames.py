"""Uniform frame sampling: seeking gives the frames a full decode gives; clear errors on bad
files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared.media import MediaError
from shared.media.frames import load_frames_from_store, sample_frames, uniform_indices

FULL_DECODE = 10**9  # seek_min_frames no clip reaches
ALWAYS_SEEK = 1


def _write(
    path: Path,
    n: int = 150,
    fps: int = 25,
    gop: int = 10,
    codec: str = "libx264",
    b_frames: int = 2,
) -> Path:
    """A clip whose frames all differ (red level = index, a bar whose width = index), with short
    GOPs and B-frames so that seeking and presentation order both matter."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.gop_size = gop
        if b_frames:
            stream.codec_context.max_b_frames = b_frames
        for i in range(n):
            img = np.zeros((48, 64, 3), np.uint8)
            img[:, :, 0] = (i * 7) % 256
            img[:24, : i % 64 + 1, 1] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("gop10.mp4", {}),
        ("short.mp4", {"n": 37, "gop": 5}),
        ("long-gop.mp4", {"n": 200, "gop": 60}),
        ("matroska.mkv", {}),  # duration on the container only
        ("vp9.webm", {"codec": "libvpx-vp9", "b_frames": 0}),
    ],
)
def test_seeking_gives_the_frames_of_a_full_decode(tmp_path, name, kw):
    path = _write(tmp_path / name, **kw)
    full, full_t = sample_frames(path, 8, seek_min_frames=FULL_DECODE)
    sought, sought_t = sample_frames(path, 8, seek_min_frames=ALWAYS_SEEK)
    assert full.shape == sought.shape == (8, 48, 64, 3) and full.dtype == sought.dtype == np.uint8
    assert np.allclose(full_t, sought_t, atol=1e-6)
    assert np.array_equal(full, sought)  # the same decoded frames, bit for bit
    assert all(
        b > a for a, b in zip(full_t, full_t[1:], strict=False)
    )  # 8 distinct frames, in order


def test_frames_are_spread_uniformly_over_the_whole_clip(tmp_path):
    path = _write(tmp_path / "c.mp4", n=160, fps=20)  # 8 s
    for seek in (FULL_DECODE, ALWAYS_SEEK):
        _, times = sample_frames(path, 8, seek_min_frames=seek)
        # the reference's frames (qwen-vl-utils): round(linspace(0, 159, 8)), first and last
        # included — not the middles of 8 equal spans
        assert np.allclose(times, [i / 20 for i in (0, 23, 45, 68, 91, 114, 136, 159)], atol=1e-6)


def test_short_clip_repeats_frames_and_max_side_bounds_the_size(tmp_path):
    path = _write(tmp_path / "three.mp4", n=3, b_frames=0)
    frames, times = sample_frames(path, 8, max_side=32, seek_min_frames=FULL_DECODE)
    assert frames.shape == (8, 24, 32, 3)
    assert len(set(times)) == 3 and times == sorted(times)


def test_uniform_indices():
    assert uniform_indices(80, 8) == [0, 11, 23, 34, 45, 56, 68, 79]
    assert uniform_indices(100, 8) == [0, 14, 28, 42, 57, 71, 85, 99]  # 42.43, 56.57: to nearest
    assert uniform_indices(3, 4) == [0, 1, 1, 2]  # 0.67 -> 1, 1.33 -> 1
    assert uniform_indices(8, 4) == [0, 2, 5, 7]  # 2.33, 4.67
    assert uniform_indices(1, 8) == [0] * 8
    with pytest.raises(MediaError, match="no frames"):
        uniform_indices(0, 8)
    with pytest.raises(ValueError, match="positive"):
        uniform_indices(10, 0)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "no such video file"),
        (b"", "empty file"),
        (b"this is not a video at all" * 40, "cannot decode"),
    ],
)
def test_bad_files_give_a_clear_media_error(tmp_path, content, reason):
    path = tmp_path / "bad.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(MediaError, match=reason):
        sample_frames(path, 8)


def test_stored_frames_errors(tmp_path):
    from io import BytesIO

    from PIL import Image

    from shared.storage import get_store

    store = get_store()
    for key, size in (("a.png", (32, 32)), ("b.png", (16, 32))):
        buf = BytesIO()
        Image.new("RGB", size).save(buf, format="PNG")
        store.put_bytes(f"f/{key}", buf.getvalue())
    assert load_frames_from_store(["f/a.png", "f/a.png"]).shape == (2, 32, 32, 3)
    with pytest.raises(MediaError, match="no frame keys"):
        load_frames_from_store([])
    with pytest.raises(MediaError, match="cannot read stored frame f/missing.png"):
        load_frames_from_store(["f/a.png", "f/missing.png"])
    with pytest.raises(MediaError, match="differ in size"):
        load_frames_from_store(["f/a.png", "f/b.png"])


def test_a_stream_copied_clip_is_sampled_over_the_frames_it_shows(tmp_path):
    """A clip cut by stream copy starts at the keyframe before its span, hidden by an MP4 edit list;
    its header counts the hidden frames too. Sampling spreads over the frames it really shows."""
    import av

    clip_module = pytest.importorskip("shared.media.clip")
    if not hasattr(clip_module, "copy_clips"):
        pytest.skip("no stream-copy clipper in this tree")
    src = _write(tmp_path / "src.mp4", n=300, gop=50)
    (clip,) = clip_module.copy_clips(src, [(2.1, 6.3)], [tmp_path / "clip.mp4"])
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        shown = [float(f.time) for f in container.decode(stream)]
    frames, times = sample_frames(clip, 8, seek_min_frames=FULL_DECODE)
    assert times == [shown[i] for i in uniform_indices(len(shown), 8)]
    sought, sought_t = sample_frames(clip, 8, seek_min_frames=ALWAYS_SEEK)
    assert np.allclose(
        times, sought_t, atol=1 / 25 + 1e-6
    )  # the header's duration differs by < 1 frame
