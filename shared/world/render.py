"""Rendering a spec to frames (numpy) and to an mp4 (one ffmpeg process, raw frames on a pipe)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from shared.media import ffmpeg_exe
from shared.world.spec import object_color_at, shot_at, visible
from shared.world.vocab import BACKGROUNDS, COLORS, DIRECTIONS, SIZES

PAN_EXTENT = 0.35  # fraction of the frame the scene travels during a pan shot
ZOOM_EXTENT = 0.6  # relative scale change during a zoom shot
NOISE = 6


def _camera(shot: dict[str, Any], progress: float) -> tuple[float, float]:
    """(horizontal offset of the scene in frame widths, zoom scale) at ``progress`` in [0, 1]."""
    cam = shot["camera"]
    if cam == "pan left":  # the camera turns left: the scene slides right
        return PAN_EXTENT * progress, 1.0
    if cam == "pan right":
        return -PAN_EXTENT * progress, 1.0
    if cam == "zoom in":
        return 0.0, 1.0 + ZOOM_EXTENT * progress
    if cam == "zoom out":
        return 0.0, 1.0 + ZOOM_EXTENT * (1 - progress)
    return 0.0, 1.0


def render_frame(
    spec: dict[str, Any], t: float, rng: np.random.Generator | None = None
) -> np.ndarray:
    w, h = spec["width"], spec["height"]
    shot = shot_at(spec, t)
    dur = max(shot["end_s"] - shot["start_s"], 1e-6)
    progress = min(max((t - shot["start_s"]) / dur, 0.0), 1.0)
    shift, zoom = _camera(shot, progress)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    # world coordinates of each pixel (camera applied), in frame units
    wx = ((xs + 0.5) / w - 0.5) / zoom + 0.5 - shift
    wy = ((ys + 0.5) / h - 0.5) / zoom + 0.5
    bg = np.array(BACKGROUNDS[shot["background"]], np.float32)
    checker = ((np.floor(wx * 8) + np.floor(wy * 8)) % 2)[..., None]
    frame = np.broadcast_to(bg, (h, w, 3)) * (0.8 + 0.35 * checker)
    for obj in shot["objects"]:
        if not visible(obj, t):
            continue
        dx, dy = DIRECTIONS.get(obj["motion"], (0.0, 0.0))
        elapsed = t - max(obj["appear_s"], shot["start_s"])
        cx = obj["x"] + dx * obj["speed"] * elapsed
        cy = obj["y"] + dy * obj["speed"] * elapsed
        r = SIZES[obj["size"]]
        ux, uy = wx - cx, wy - cy
        if obj["shape"] == "circle":
            mask = ux**2 + uy**2 <= r**2
        elif obj["shape"] == "square":
            mask = (np.abs(ux) <= r * 0.85) & (np.abs(uy) <= r * 0.85)
        else:  # triangle pointing up
            mask = (uy >= -r) & (uy <= r * 0.8) & (np.abs(ux) <= (uy + r) * 0.62)
        color = np.array(COLORS[object_color_at(obj, t)], np.float32)
        if obj["texture"] == "striped":
            stripes = np.floor((wx + wy) * 14) % 2 == 0
            fill = np.where(stripes[..., None], color, color * 0.35)
        else:
            fill = np.broadcast_to(color, (h, w, 3))
        frame = np.where(mask[..., None], fill, frame)
    if rng is not None:
        frame = frame + rng.integers(-NOISE, NOISE + 1, size=frame.shape)
    return np.clip(frame, 0, 255).astype(np.uint8)


def render_frames(spec: dict[str, Any], noise_seed: int | None = None) -> np.ndarray:
    fps = spec["fps"]
    n = max(int(round(spec["duration_s"] * fps)), 1)
    rng = np.random.default_rng(spec["seed"] if noise_seed is None else noise_seed)
    return np.stack([render_frame(spec, (i + 0.5) / fps, rng) for i in range(n)])


def encode(frames: np.ndarray, fps: float, path: str | Path, crf: int = 20) -> Path:
    """Encode uint8 (T, H, W, 3) frames as H.264 mp4 (every 8th frame a keyframe)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t, h, w, _ = frames.shape
    cmd = [
        ffmpeg_exe(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{w}x{h}",
        "-r",
        str(fps),
        "-i",
        "-",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-crf",
        str(crf),
        "-g",
        "8",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        str(path),
    ]
    proc = subprocess.run(
        cmd, input=np.ascontiguousarray(frames).tobytes(), capture_output=True, timeout=300
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"ffmpeg failed to encode {path}: {proc.stderr.decode(errors='replace')[-500:]}"
        )
    return path


def render(spec: dict[str, Any], path: str | Path, noise_seed: int | None = None) -> Path:
    return encode(render_frames(spec, noise_seed), spec["fps"], path)
