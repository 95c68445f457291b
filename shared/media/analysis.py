"""One low-resolution decode pass that feeds every consumer: scene cuts, motion (static filter),
perceptual hashes, and the frames stored per clip. A source is decoded once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.media import MediaError


@dataclass
class Analysis:
    times: np.ndarray  # (N,) seconds from the first frame
    small: (
        np.ndarray
    )  # (N, ≈a, ≈a, 3) float32 at analysis resolution (YUV for 4:2:0 sources, else RGB)
    keep_idx: np.ndarray  # indices of frames kept at frame resolution
    keep: list[np.ndarray]  # RGB uint8 frames (<= frame_side) for storage
    duration_s: float
    decode_errors: int = 0


def stored_frame_size(width: int, height: int, frame_side: int) -> tuple[int, int]:
    """``(width, height)`` of the frames kept for storage. ``frame_side`` > 0: the longer side at
    most that. 0: the size the model's video preprocessing shrinks a frame to (the reference's
    per-frame budget, ``model.video_*_pixels``, for ``model.num_frames`` frames), never enlarged —
    the embedder then feeds a stored clip exactly as it feeds the source file, so training sees
    the token count evaluation sees (a smaller source is enlarged by the embedder in both)."""
    if frame_side > 0:
        scale = min(1.0, frame_side / max(width, height))
        return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)
    from shared.config import get_settings
    from shared.model.visual import VideoBudget

    ms = get_settings().model
    budget = VideoBudget(ms.video_min_pixels, ms.video_max_pixels, ms.video_total_pixels)
    h, w = budget.storage_size(height, width, ms.num_frames)
    return w, h


def _assemble(
    times: list[float],
    small: list[np.ndarray],
    keep: list[np.ndarray],
    keep_idx: list[int],
    errors: int,
) -> Analysis:
    """The decoded frames in presentation order, times from the first frame."""
    ts = np.asarray(times)
    order = np.argsort(ts, kind="stable")  # VFR / B-frame safety
    ts = ts[order] - ts[order[0]]  # seconds from the first frame (streams may start later than 0)
    small_arr = np.stack(small).astype(np.float32)[order]
    remap = np.empty_like(order)
    remap[order] = np.arange(len(order))
    kidx = remap[np.asarray(keep_idx, dtype=np.int64)]
    korder = np.argsort(kidx, kind="stable")
    dt = float(np.median(np.diff(ts))) if len(ts) > 1 else 0.0
    return Analysis(
        times=ts,
        small=small_arr,
        keep_idx=kidx[korder],
        keep=[keep[i] for i in korder],
        duration_s=float(ts[-1] - ts[0] + dt),
        decode_errors=errors,
    )


def decode_once(
    path: str | Path,
    analysis_side: int,
    frame_side: int,
    keep_fps: float = 8.0,
    max_frames: int = 200_000,
) -> Analysis:
    """Decode every frame once: a tiny RGB copy of each, and RGB frames for storage
    (``stored_frame_size``: at most ``frame_side`` on the longer side, or with 0 at the model's
    video budget) subsampled to ``keep_fps`` (enough for 8 uniform frames per clip of >= 1 s; 0
    keeps none, for a scene split alone)."""
    import av

    times, small, keep, keep_idx = [], [], [], []
    errors = 0
    next_keep = 0.0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            kw, kh = stored_frame_size(
                stream.codec_context.width, stream.codec_context.height, frame_side
            )
            packets = container.demux(stream)
            while True:
                try:
                    packet = next(packets)
                except StopIteration:
                    break
                except av.error.InvalidDataError:
                    errors += 1
                    break
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    errors += 1
                    continue
                for frame in frames:
                    t = float(frame.time) if frame.time is not None else (len(times) / 25.0)
                    times.append(t)
                    small.append(_small(frame, analysis_side))
                    if keep_fps > 0 and t + 1e-6 >= next_keep:
                        keep.append(_rgb(frame, kw, kh))
                        keep_idx.append(len(times) - 1)
                        next_keep = t + 1.0 / keep_fps
                    if len(times) >= max_frames:
                        raise MediaError(f"more than {max_frames} frames")
    except MediaError:
        raise
    except Exception as exc:  # noqa: BLE001
        if not times:
            raise MediaError(f"cannot decode: {exc}") from exc
        errors += 1
    if not times:
        raise MediaError("no decodable frames")
    return _assemble(times, small, keep, keep_idx, errors)


_PLANAR_420 = {"yuv420p", "yuvj420p"}


def _rgb(frame, width: int, height: int) -> np.ndarray:  # noqa: ANN001 - an av.VideoFrame
    """An RGB copy at ``width``×``height``: swscale, then the plane read straight into numpy
    (PyAV's ``to_ndarray`` costs several times the conversion itself on padded rows)."""
    rgb = frame.reformat(width=width, height=height, format="rgb24", interpolation="FAST_BILINEAR")
    plane = rgb.planes[0]
    rows = np.frombuffer(plane, np.uint8).reshape(rgb.height, plane.line_size)
    return rows[:, : rgb.width * 3].reshape(rgb.height, rgb.width, 3).copy()


def _small(frame, side: int) -> np.ndarray:  # noqa: ANN001 - an av.VideoFrame
    """A tiny (≈side×side×3) copy of a frame. For 4:2:0 frames (nearly all web video) it is read by
    striding the decoded Y/U/V planes — no colour conversion, no scaler; other formats go through
    swscale."""
    if frame.format.name in _PLANAR_420:
        w, h = frame.width, frame.height
        sy, sx = max(2, h // side) // 2 * 2, max(2, w // side) // 2 * 2
        planes = frame.planes
        y = np.frombuffer(planes[0], np.uint8).reshape(-1, planes[0].line_size)[:h:sy, :w:sx]
        u = np.frombuffer(planes[1], np.uint8).reshape(-1, planes[1].line_size)[
            : h // 2 : sy // 2, : w // 2 : sx // 2
        ]
        v = np.frombuffer(planes[2], np.uint8).reshape(-1, planes[2].line_size)[
            : h // 2 : sy // 2, : w // 2 : sx // 2
        ]
        r, c = min(y.shape[0], u.shape[0], v.shape[0]), min(y.shape[1], u.shape[1], v.shape[1])
        return np.stack([y[:r, :c], u[:r, :c], v[:r, :c]], axis=-1)
    return frame.reformat(
        width=side, height=side, format="rgb24", interpolation="FAST_BILINEAR"
    ).to_ndarray()


def frame_differences(small: np.ndarray) -> np.ndarray:
    """Mean absolute luminance difference between consecutive frames, in [0, 255]."""
    if len(small) < 2:
        return np.zeros(0, np.float32)
    return np.abs(np.diff(small, axis=0)).reshape(len(small) - 1, -1).mean(axis=1)


def changed_fraction(small: np.ndarray, pixel_delta: float) -> np.ndarray:
    """(N-1, pixels) booleans: which pixels change by more than ``pixel_delta`` levels in any
    channel between consecutive frames. (An OR of per-channel masks: a max over the channel axis
    is an order of magnitude slower on these tiny strided arrays.)"""
    moved = np.abs(np.diff(small, axis=0)) > pixel_delta
    if moved.ndim == 4:
        moved = np.logical_or.reduce([moved[..., c] for c in range(moved.shape[-1])])
    return moved.reshape(len(moved), -1)


def detect_cuts(
    small: np.ndarray,
    times: np.ndarray,
    threshold: float,
    min_gap_s: float = 0.5,
    pixel_delta: float = 8.0,
    peak_ratio: float = 2.0,
    window: int = 3,
) -> list[float]:
    """Hard cuts: frames where at least ``threshold`` of the pixels change by more than
    ``pixel_delta`` levels (a whole-frame change, unlike an object appearing or moving), and
    ``peak_ratio`` times more than the median of the ``window`` frames on either side (unlike a
    fast pan, where every neighbour changes as much)."""
    if len(small) < 2:
        return []
    changed = changed_fraction(small, pixel_delta).mean(axis=1)
    padded = np.pad(changed, window, constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * window + 1)
    around = np.delete(windows, window, axis=1)
    with np.errstate(all="ignore"):
        local = (
            np.nan_to_num(np.nanmedian(around, axis=1), nan=0.0)
            if around.shape[1]
            else np.zeros_like(changed)
        )
    cuts: list[float] = []
    for i in np.nonzero((changed > threshold) & (changed > peak_ratio * local))[0]:
        t = float(times[i + 1])
        if not cuts or t - cuts[-1] >= min_gap_s:
            cuts.append(t)
    return cuts


def split_spans(
    duration: float, cuts: list[float], min_s: float, max_s: float, stride_s: float
) -> list[tuple[float, float]]:
    """Clips from scene cuts: shots shorter than ``min_s`` dropped, longer than ``max_s`` cut at a
    fixed stride (the fallback when there are no cuts at all)."""
    bounds = [0.0, *[c for c in cuts if 0 < c < duration], duration]
    spans = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        if b - a < min_s:
            continue
        if b - a <= max_s:
            spans.append((a, b))
            continue
        t = a
        while b - t >= min_s:
            spans.append((t, min(t + stride_s, b)))
            t += stride_s
    return spans


def motion_score(
    small: np.ndarray, times: np.ndarray, start: float, end: float, pixel_delta: float = 20.0
) -> float:
    """Percent of pixels that change by more than ``pixel_delta`` levels between consecutive frames
    of [start, end): encoder and sensor noise stay below the delta, so a static shot scores ~0 while
    even a small moving object scores clearly above it."""
    sel = small[(times >= start) & (times < end)]
    if len(sel) < 2:
        return 0.0
    return float(changed_fraction(sel, pixel_delta).mean() * 100)


def phash(frame: np.ndarray) -> str:
    """64-bit DCT perceptual hash of a frame (RGB or gray), as 16 hex digits."""
    from PIL import Image
    from scipy.fft import dctn

    gray = frame.mean(axis=-1) if frame.ndim == 3 else frame
    img = np.asarray(
        Image.fromarray(gray.astype(np.uint8)).resize((32, 32), Image.Resampling.BILINEAR),
        np.float32,
    )
    coef = dctn(img, norm="ortho")[:8, :8].flatten()
    med = np.median(coef[1:])
    bits = (coef > med).astype(np.uint8)
    return f"{int(''.join(map(str, bits)), 2):016x}"


def hamming(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def clip_frames(
    an: Analysis, start: float, end: float, num: int
) -> tuple[list[np.ndarray], list[float]]:
    """``num`` stored frames spread uniformly over [start, end) from the kept frames, first and
    last included as the model's frame sampling takes them (``round(linspace(0, n - 1, num))``)."""
    from shared.media.frames import uniform_indices

    kt = an.times[an.keep_idx]
    sel = np.nonzero((kt >= start) & (kt < end))[0]
    if len(sel) == 0:
        sel = np.array([int(np.argmin(np.abs(kt - (start + end) / 2)))])
    pick = [sel[i] for i in uniform_indices(len(sel), num)]
    return [an.keep[i] for i in pick], [float(kt[i]) for i in pick]
