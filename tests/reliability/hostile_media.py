"""A hostile media corpus, made with ffmpeg and by hand, for the reliability suite.

Every case says what a correct pipeline must do with it: ``clip`` (a valid video: it must become
clips), ``reject`` (it must end as a job-event row with a clear reason), or ``either`` (both are
acceptable, as long as nothing crashes or hangs). Built in a few seconds at tiny sizes.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from shared.media import ffmpeg_exe


@dataclass(frozen=True)
class HostileCase:
    name: str
    path: str  # as written in the manifest (may be hostile itself: traversal, URL, symlink)
    expect: str  # clip | reject | either
    why: str


def _ff(*args: str) -> None:
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True, timeout=120
    )


def _lavfi(
    out: Path,
    *,
    size: str = "64x48",
    seconds: float = 3.0,
    rate: str = "8",
    extra: tuple[str, ...] = (),
    src: str = "testsrc2",
    vcodec: str = "libx264",
    pix_fmt: str | None = "yuv420p",
) -> Path:
    args = ["-f", "lavfi", "-i", f"{src}=size={size}:rate={rate}:duration={seconds}"]
    args += ["-c:v", vcodec]
    if pix_fmt:
        args += ["-pix_fmt", pix_fmt]
    if vcodec == "libx264":
        args += ["-preset", "ultrafast"]
    _ff(*args, *extra, str(out))
    return out


_counter = [0]


def _distinct(
    path: Path,
    *,
    vcodec: str = "libx264",
    pix_fmt: str | None = "yuv420p",
    extra: tuple[str, ...] = (),
) -> Path:
    """A valid, moving video whose content no other case shares (so dedup cannot merge cases)."""
    import random

    from shared.world import render, sample_spec

    _counter[0] += 1
    spec = sample_spec(
        random.Random(9000 + _counter[0]),
        f"h{_counter[0]}",
        shots=1,
        shot_s=(3.0, 3.0),
        n_objects=2,
    )
    for i, obj in enumerate(spec["shots"][0]["objects"]):
        obj["motion"], obj["x"], obj["y"] = (
            ("right", 0.3, 0.3 + 0.4 * i) if i == 0 else ("left", 0.7, 0.7)
        )
    src = render(spec, path.with_name(f".src-{_counter[0]}.mp4"))
    args = ["-i", str(src), "-c:v", vcodec]
    if pix_fmt:
        args += ["-pix_fmt", pix_fmt]
    _ff(*args, *extra, str(path))
    src.unlink()
    return path


def _patch_box_dims(path: Path, width: int, height: int) -> None:
    """Rewrite the declared width/height of the mp4 'tkhd' box and the 'avc1' sample entry."""
    data = bytearray(path.read_bytes())
    i = data.find(b"tkhd")
    if i > 0:
        version = data[i + 4]
        off = (
            i + 4 + (92 if version == 1 else 80)
        )  # width/height are the last 8 bytes (16.16 fixed)
        data[off : off + 8] = struct.pack(">II", width << 16, height << 16)
    j = data.find(b"avc1")
    if j > 0:
        data[j + 28 : j + 32] = struct.pack(">HH", width, height)
    path.write_bytes(bytes(data))


def _patch_duration(path: Path, seconds: int) -> None:
    """Declare an absurd duration in the 'mvhd' box (timescale kept)."""
    data = bytearray(path.read_bytes())
    i = data.find(b"mvhd")
    if data[i + 4] == 0:
        timescale = struct.unpack(">I", data[i + 16 : i + 20])[0]
        data[i + 20 : i + 24] = struct.pack(">I", min(seconds * timescale, 2**32 - 1))
    path.write_bytes(bytes(data))


def build_hostile_corpus(root: Path) -> list[HostileCase]:
    """Write the corpus under ``root`` and a ``manifest.jsonl`` naming every case; return the
    cases."""
    root.mkdir(parents=True, exist_ok=True)
    cases: list[HostileCase] = []

    def add(name: str, path: Path | str, expect: str, why: str) -> None:
        rel = os.path.relpath(path, root) if isinstance(path, Path) else path
        cases.append(HostileCase(name, rel, expect, why))

    good = _distinct(root / "good.mp4", extra=("-movflags", "+faststart"))
    add("good", good, "clip", "a plain valid video (control)")

    (root / "zero_bytes.mp4").write_bytes(b"")
    add("zero_bytes", root / "zero_bytes.mp4", "reject", "empty file")
    full = good.read_bytes()
    (root / "truncated.mp4").write_bytes(full[: len(full) // 3])
    add("truncated", root / "truncated.mp4", "either", "cut at a third")
    moov_last = _lavfi(root / "_moov_last.mp4")
    (root / "truncated_no_index.mp4").write_bytes(
        moov_last.read_bytes()[: moov_last.stat().st_size // 2]
    )
    moov_last.unlink()
    add(
        "truncated_no_index", root / "truncated_no_index.mp4", "reject", "cut before the moov index"
    )
    (root / "garbage.mp4").write_bytes(os.urandom(20_000))
    add("garbage", root / "garbage.mp4", "reject", "random bytes")
    _distinct(root / "_wrong.mp4")
    (root / "_wrong.mp4").rename(root / "wrong_extension.avi")
    add("wrong_extension", root / "wrong_extension.avi", "clip", "an mp4 named .avi")
    _ff(
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=3",
        "-c:a",
        "aac",
        str(root / "audio_only.mp4"),
    )
    add("audio_only", root / "audio_only.mp4", "reject", "no video stream")
    from PIL import Image

    Image.new("RGB", (64, 48), (10, 200, 30)).save(root / "image_renamed.mp4", format="PNG")
    add("image_renamed", root / "image_renamed.mp4", "either", "a PNG named .mp4")
    _lavfi(root / "one_frame.mp4", seconds=0.125)
    add("one_frame", root / "one_frame.mp4", "reject", "a single frame")
    _lavfi(root / "tiny_1x1.mkv", size="1x1", src="color", vcodec="ffv1", pix_fmt=None)
    add("tiny_1x1", root / "tiny_1x1.mkv", "reject", "1×1 pixels")
    huge = _lavfi(root / "huge_declared.mp4")
    _patch_box_dims(huge, 20000, 20000)
    add("huge_declared", huge, "either", "declares 20000×20000 in the container")
    long_decl = _lavfi(root / "absurd_duration.mp4")
    _patch_duration(long_decl, 10**7)
    add("absurd_duration", long_decl, "either", "declares ~116 days")
    _lavfi(root / "absurd_fps.mp4", rate="1000", seconds=1.0)
    add("absurd_fps", root / "absurd_fps.mp4", "either", "1000 frames per second")
    _lavfi(root / "slow_fps.mkv", rate="1/2", seconds=8.0, vcodec="ffv1", pix_fmt=None)
    add("slow_fps", root / "slow_fps.mkv", "either", "one frame every two seconds")
    _distinct(
        root / "vfr.mp4",
        extra=(
            "-vf",
            "setpts='(N/8+0.06*mod(N,2))/TB'",
            "-fps_mode",
            "vfr",
            "-enc_time_base",
            "1/1000",
        ),
    )
    add("vfr", root / "vfr.mp4", "clip", "variable frame rate")
    _distinct(root / "_rot.mp4")
    _ff(
        "-display_rotation",
        "90",
        "-i",
        str(root / "_rot.mp4"),
        "-c",
        "copy",
        str(root / "rotated.mp4"),
    )
    (root / "_rot.mp4").unlink()
    add("rotated", root / "rotated.mp4", "clip", "rotation metadata (90°)")
    for name, codec, ext, pix in [
        ("mpeg4_avi", "mpeg4", "avi", "yuv420p"),
        ("mjpeg_mov", "mjpeg", "mov", "yuvj420p"),
        ("vp9_webm", "libvpx-vp9", "webm", "yuv420p"),
        ("ffv1_mkv", "ffv1", "mkv", None),
        ("prores_mov", "prores", "mov", "yuv422p10le"),
        ("h264_yuv444", "libx264", "mp4", "yuv444p"),
        ("h264_10bit", "libx264", "mp4", "yuv420p10le"),
        ("gray_ffv1", "ffv1", "mkv", "gray"),
    ]:
        _distinct(root / f"{name}.{ext}", vcodec=codec, pix_fmt=pix)
        add(name, root / f"{name}.{ext}", "clip", f"{codec} / {pix or 'default'} in .{ext}")
    _lavfi(root / "gif_video.gif", vcodec="gif", pix_fmt=None)
    add("gif_video", root / "gif_video.gif", "either", "an animated GIF")
    base = _distinct(root / "_multi.mp4")
    _ff(
        "-i",
        str(base),
        "-f",
        "lavfi",
        "-i",
        "mandelbrot=size=32x32:rate=8",
        "-f",
        "lavfi",
        "-i",
        "sine=duration=3",
        "-map",
        "0:v",
        "-map",
        "1:v",
        "-map",
        "2:a",
        "-map",
        "2:a",
        "-t",
        "3",
        "-c:v",
        "ffv1",
        "-c:a",
        "flac",
        str(root / "many_streams.mkv"),
    )
    base.unlink()
    add("many_streams", root / "many_streams.mkv", "clip", "two video and two audio streams")
    for name, fname in [
        ("unicode_name", "vidéo 日本語 ✓.mp4"),
        ("shell_name", "a;rm -rf ~;$(id) `id` |&>x.mp4"),
        ("dash_name", "-rf --help.mp4"),
        ("newline_name", "line\nbreak.mp4"),
    ]:
        _distinct(root / "_named.mp4").rename(root / fname)
        add(name, root / fname, "clip", f"hostile file name {fname!r}")
    os.symlink(good.name, root / "symlink_to_good.mp4")
    add("symlink", root / "symlink_to_good.mp4", "either", "a symlink to a valid video")
    os.symlink("does-not-exist.mp4", root / "dangling.mp4")
    add("dangling_symlink", root / "dangling.mp4", "reject", "a symlink to nothing")
    os.symlink("/etc/passwd", root / "escape_link.mp4")
    add("symlink_escape", root / "escape_link.mp4", "reject", "a symlink out of the source folder")
    for name, hostile in [
        ("traversal", "../../../../etc/passwd"),
        ("absolute", "/etc/shadow"),
        ("file_url", "file:///etc/passwd"),
        ("metadata_url", "http://169.254.169.254/latest/meta-data"),
        ("missing", "no/such/video.mp4"),
    ]:
        add(name, hostile, "reject", f"manifest entry {hostile!r}")

    with open(root / "manifest.jsonl", "w", encoding="utf-8") as fh:
        for case in cases:
            fh.write(json.dumps({"path": case.path, "caption": f"hostile case {case.name}"}) + "\n")
    return cases
