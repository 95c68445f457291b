"""shared.media: probe and limits, the one-pass analysis (cuts, motion, hashes, frames), spans,
and clips cut by stream copy that decode to exactly the frames of their span."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import numpy as np
import pytest

from shared.config import SynthSettings
from shared.media import MediaError, ffmpeg_exe
from shared.media.analysis import (
    clip_frames,
    decode_once,
    detect_cuts,
    hamming,
    motion_score,
    phash,
    split_spans,
)
from shared.media.clip import copy_clips, extract_clip
from shared.media.frames import sample_frames
from shared.media.probe import check_limits, probe
from shared.world import render, sample_spec


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    # three shots on different backgrounds (a cut between shots on the same background and with
    # similar objects can be invisible at the analysis resolution; the bench scores such cases)
    spec = sample_spec(random.Random(1), "v0", shots=3, shot_s=(2.0, 2.5), fps=25, size=(160, 96))
    return spec, render(spec, tmp_path_factory.mktemp("media") / "v0.mp4")


def test_probe_reads_the_header_and_limits_give_reasons(video, tmp_path):
    spec, path = video
    p = probe(path)
    assert (p.width, p.height, p.codec) == (160, 96, "h264") and abs(
        p.duration_s - spec["duration_s"]
    ) < 0.1
    assert check_limits(p, SynthSettings()) is None
    assert "too large" in check_limits(p, SynthSettings(max_pixels=100 * 90))
    assert "too small" in check_limits(p, SynthSettings(min_side=128))
    assert "too long" in check_limits(p, SynthSettings(max_duration_s=1.0))
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 50)
    with pytest.raises(MediaError, match="empty"):
        probe(tmp_path / "empty.mp4")
    with pytest.raises(MediaError, match="unreadable"):
        probe(tmp_path / "junk.mp4")


def test_one_pass_finds_the_cuts_and_keeps_frames_for_every_span(video):
    spec, path = video
    s = SynthSettings()
    an = decode_once(path, s.analysis_side, s.frame_side)
    assert an.times[0] == 0.0 and len(an.times) == round(spec["duration_s"] * 25)
    cuts = detect_cuts(an.small, an.times, s.scene_threshold, pixel_delta=s.scene_pixel_delta)
    assert len(cuts) == len(spec["cuts"]) and all(
        abs(c - t) < 0.05 for c, t in zip(cuts, spec["cuts"], strict=True)
    )
    split_only = decode_once(
        path, s.analysis_side, s.frame_side, keep_fps=0
    )  # a split alone keeps no frames
    assert split_only.keep == [] and np.array_equal(split_only.small, an.small)
    frames, times = clip_frames(an, cuts[0], cuts[1], 8)
    assert (
        len(frames) == 8 and all(cuts[0] <= t < cuts[1] for t in times) and times == sorted(times)
    )
    assert frames[0].shape == (96, 160, 3) and frames[0].dtype == np.uint8


def test_cut_detector_ignores_motion_and_needs_a_peak():
    rng = np.random.default_rng(0)
    times = np.arange(60) / 25
    pan = np.stack(
        [np.roll(rng.integers(0, 255, (32, 32, 3)), 3 * i, axis=1) for i in range(60)]
    ).astype(np.float32)
    assert detect_cuts(pan, times, 0.25) == []  # every frame changes as much as its neighbours
    still = np.repeat(rng.integers(0, 255, (1, 32, 32, 3)), 60, axis=0).astype(np.float32)
    still[30:] = 255 - still[30:]
    assert detect_cuts(still, times, 0.25) == [pytest.approx(30 / 25)]


def test_spans_respect_min_max_and_the_stride_fallback():
    assert split_spans(10.0, [0.4, 5.0], 1.0, 10.0, 4.0) == [
        (0.4, 5.0),
        (5.0, 10.0),
    ]  # 0.4 s shot dropped
    assert split_spans(13.0, [], 1.0, 10.0, 4.0) == [
        (0.0, 4.0),
        (4.0, 8.0),
        (8.0, 12.0),
        (12.0, 13.0),
    ]
    assert split_spans(0.8, [], 1.0, 10.0, 4.0) == []


def test_static_scores_zero_and_moving_scores_above_the_threshold(tmp_path):
    s = SynthSettings()
    rng = random.Random(9)
    static = render(
        sample_spec(rng, "st", shots=1, static=True, fps=25, size=(96, 96)), tmp_path / "st.mp4"
    )
    moving = render(sample_spec(rng, "mv", shots=1, fps=25, size=(96, 96)), tmp_path / "mv.mp4")
    a, b = (decode_once(p, s.analysis_side, 64) for p in (static, moving))
    assert motion_score(a.small, a.times, 0, a.duration_s) < s.static_threshold
    assert motion_score(b.small, b.times, 0, b.duration_s) > s.static_threshold


def test_phash_matches_recompressed_copies_not_other_frames():
    rng = np.random.default_rng(1)
    base = (rng.random((8, 8, 3)) * 255).astype(np.uint8).repeat(28, 0).repeat(28, 1)
    noisy = np.clip(base.astype(int) + rng.integers(-6, 7, base.shape), 0, 255).astype(np.uint8)
    other = (rng.random((8, 8, 3)) * 255).astype(np.uint8).repeat(28, 0).repeat(28, 1)
    assert hamming(phash(base), phash(noisy)) <= SynthSettings().dedup_hamming
    assert hamming(phash(base), phash(other)) > 16


def _transcode(src: Path, dst: Path, *args: str) -> Path:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(src), *args, str(dst)], check=True)
    return dst


@pytest.fixture(scope="module")
def web_like(video, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same shots as web video is encoded: B-frames (decode order != display order), 2 s GOPs
    with no keyframe at the cuts, and other containers and time bases."""
    out = tmp_path_factory.mktemp("web")
    mp4 = _transcode(
        video[1],
        out / "bframes.mp4",
        "-c:v",
        "libx264",
        "-preset",
        "medium",
        "-bf",
        "3",
        "-g",
        "50",
        "-sc_threshold",
        "0",
        "-pix_fmt",
        "yuv420p",
    )
    return {
        "bframes.mp4": mp4,
        "bframes.ts": _transcode(mp4, out / "bframes.ts", "-c", "copy"),
        "bframes.mkv": _transcode(mp4, out / "bframes.mkv", "-c", "copy"),
        "vp9.webm": _transcode(
            video[1], out / "vp9.webm", "-c:v", "libvpx-vp9", "-deadline", "realtime", "-g", "50"
        ),
    }


def _spans(spec: dict, duration: float) -> list[tuple[float, float]]:
    c1, c2 = spec["cuts"]
    assert 2.0 < c1 < c2 - 1.0
    a = round((c1 + 0.3) * 25) / 25  # two spans that start inside one GOP, neither on a keyframe
    b = round((c1 + 0.9) * 25) / 25
    # 1.99: between frames, just before the 2 s keyframe of a 50-frame GOP (the first frame is shown
    # late)
    return [(0.0, 1.2), (1.99, a), (a, b), (b, c2), (c2, duration)]


@pytest.mark.parametrize("name", [None, "bframes.mp4", "bframes.ts", "vp9.webm"])
def test_stream_copied_clips_decode_to_exactly_their_span(video, web_like, name, tmp_path):
    spec, path = video
    path = web_like[name] if name else path
    an = decode_once(path, 32, 64)
    spans = _spans(spec, an.duration_s)
    clips = copy_clips(path, spans, [tmp_path / f"c{i}.mp4" for i in range(len(spans))])
    for (a, b), clip in zip(spans, clips, strict=True):
        got = decode_once(clip, 32, 64)
        inside = (an.times >= a - 1e-6) & (an.times < b - 1e-6)
        assert len(got.times) == inside.sum() and np.array_equal(got.small, an.small[inside]), (
            a,
            b,
        )
        assert abs(probe(clip).duration_s - (an.times[inside][-1] - a + 0.04)) < 0.021
        # the clip decodes to exactly the span's frames, so the 8 the model reads all come from the
        # span
        sampled, times = sample_frames(clip, 8, max_side=64)
        assert len(sampled) == 8 and all(0 <= t < b - a for t in times)


def test_stream_copy_falls_back_to_a_re_encode_where_it_cannot_copy(
    video, web_like, tmp_path, monkeypatch
):
    from services.synth import media, stages

    spec, _ = video
    src = web_like[
        "bframes.mkv"
    ]  # Matroska stores no decode times: packets cannot be copied as they are
    an = decode_once(src, 32, 64)
    spans = _spans(spec, an.duration_s)
    with pytest.raises(MediaError, match="timestamps"):
        copy_clips(src, spans, [tmp_path / f"x{i}.mp4" for i in range(len(spans))])
    calls = []
    monkeypatch.setattr(
        media, "extract_clip", lambda *a, **k: calls.append(a) or extract_clip(*a, **k)
    )
    notes: dict = {}
    clips = stages._cut_clips(src, spans, tmp_path, SynthSettings(), notes)
    assert len(calls) == len(spans)
    assert (
        "timestamps" in notes["copy_fallback"]
        and f"{len(spans)} clip(s) re-encoded" in notes["copy_fallback"]
    )
    for (a, b), clip in zip(spans, clips, strict=True):
        assert abs(len(decode_once(clip, 32, 64).times) - round((b - a) * 25)) <= 1
    calls.clear()
    notes.clear()
    stages._cut_clips(web_like["bframes.mp4"], spans, tmp_path, SynthSettings(), notes)
    assert calls == [] and notes == {}  # copyable: no re-encode


def test_re_encoded_clips_are_exact_and_scaled(video, tmp_path):
    spec, path = video
    c1, c2 = spec["cuts"]
    reencoded = extract_clip(path, tmp_path / "re.mp4", c1, c2, max_side=64)
    assert abs(len(decode_once(reencoded, 32, 64).times) - round((c2 - c1) * 25)) <= 1
    assert probe(reencoded).width == 64


def test_stream_copy_refuses_what_mp4_cannot_carry(tmp_path):
    import av

    path = tmp_path / "v.avi"
    with av.open(str(path), "w") as out:
        st = out.add_stream("mjpeg", rate=10)
        st.width, st.height, st.pix_fmt = 32, 32, "yuvj420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(
                np.full((32, 32, 3), i * 20, np.uint8), format="rgb24"
            )
            for pkt in st.encode(frame.reformat(format="yuvj420p")):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
    with pytest.raises(MediaError, match="not copied"):
        copy_clips(path, [(0.0, 0.5)], [tmp_path / "c.mp4"])
