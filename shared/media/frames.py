"""Uniform frame sampling: exactly ``num`` frames spread over the whole clip (SPEC §1.4, §6.3) at
the reference's indices (qwen-vl-utils: ``round(linspace(0, n - 1, num))``, first and last frame
included), decoded with PyAV; and frames stored as images in the object store.

Only the sampled frames are converted to RGB, so memory does not grow with the clip's length; a
long clip is sampled by seeking to each target time instead of decoding every frame.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shared.media import MediaError

_TIME_EPS = 1e-6  # seconds: float slack when a frame's time equals a target time


def _resize(frame: np.ndarray, max_side: int | None) -> np.ndarray:
    if not max_side or max(frame.shape[:2]) <= max_side:
        return frame
    from PIL import Image

    h, w = frame.shape[:2]
    scale = max_side / max(h, w)
    return np.asarray(
        Image.fromarray(frame).resize(
            (max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR
        )
    )


def _same_size(frames: list[np.ndarray]) -> np.ndarray:
    """Stack frames; a stream whose resolution changes midway is resized to its first frame's
    size."""
    from PIL import Image

    h, w = frames[0].shape[:2]
    return np.stack(
        [
            f
            if f.shape[:2] == (h, w)
            else np.asarray(Image.fromarray(f).resize((w, h), Image.Resampling.BILINEAR))
            for f in frames
        ]
    )


def sampling_fps(num: int, duration_s: float | None) -> float | None:
    """The rate of ``num`` frames spread uniformly over ``duration_s`` seconds (SPEC §6.3: the
    reported fps is 8 / duration, so ``second_per_grid_ts = 2 / fps``); ``None`` when unknown."""
    if not duration_s or duration_s <= 0 or num <= 0:
        return None
    return num / duration_s  # unrounded: 2 / fps sets the temporal positions, as the reference's


def _duration(container, stream) -> float | None:  # noqa: ANN001 - PyAV objects
    """Seconds the stream shows: its header duration (an MP4 edit list's, for a clip cut by stream
    copy), else the container's (Matroska/WebM keep it there only); None when neither says."""
    import av

    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


def video_duration(path: str | Path) -> float | None:
    """How long a video file shows, in seconds (header only, no decoding); None when unknown. With
    ``sampling_fps`` it gives a file the fps its stored frames carry: ``num / duration``."""
    import av

    try:
        with av.open(str(path)) as container:
            return _duration(container, _video_stream(container, Path(path).name))
    except (av.error.FFmpegError, OSError, MediaError):
        return None


def uniform_indices(total: int, num: int) -> list[int]:
    """``num`` indices spread uniformly over ``total`` frames as the reference video reader takes
    them (qwen-vl-utils: ``round(linspace(0, total - 1, num))``, halves to even as torch rounds;
    the first and the last frame included; indices repeat when there are fewer frames than
    ``num``)."""
    if total <= 0:
        raise MediaError("video has no frames")
    if num <= 0:
        raise ValueError(f"num must be positive, got {num}")
    return [int(i) for i in np.linspace(0, total - 1, num).round()]


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise MediaError(f"no such video file: {path}")
    if path.stat().st_size == 0:
        raise MediaError(f"empty file (0 bytes): {path}")


def _video_stream(container, name: str):  # noqa: ANN001, ANN202
    if not container.streams.video:
        raise MediaError(f"no video stream in {name}")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return stream


def _count_frames(path: Path, exact_below: int) -> int:
    """How many frames the clip shows. Under ``exact_below`` frames (by the header), or with no
    count in the header, the packets are counted without decoding, leaving out those an MP4 edit
    list discards (a clip cut by stream copy starts at the keyframe before its span, and its header
    counts those frames too). Longer clips trust the header: they are sampled by seeking anyway."""
    import av

    with av.open(str(path)) as container:
        stream = _video_stream(container, path.name)
        if stream.frames and stream.frames >= exact_below:
            return int(stream.frames)
        return sum(1 for packet in container.demux(stream) if packet.size and not packet.is_discard)


def _by_index(
    path: Path, indices: list[int], max_side: int | None
) -> tuple[list[np.ndarray], list[float], int]:
    """Decode in order, converting only the wanted frames; also returns how many frames were
    seen."""
    import av

    wanted = set(indices)
    last = max(wanted)
    picked: dict[int, tuple[np.ndarray, float]] = {}
    seen = 0
    with av.open(str(path)) as container:
        stream = _video_stream(container, path.name)
        for i, frame in enumerate(container.decode(stream)):
            seen = i + 1
            if i in wanted:
                picked[i] = (
                    _resize(frame.to_ndarray(format="rgb24"), max_side),
                    float(frame.time or 0.0),
                )
            if i >= last:
                break
    if len(picked) < len(wanted):
        return [], [], seen
    return [picked[i][0] for i in indices], [picked[i][1] for i in indices], seen


def _by_seeking(
    path: Path, indices: list[int], total: int, max_side: int | None
) -> tuple[list[np.ndarray], list[float]] | None:
    """For each wanted frame index, seek to the keyframe before the time it shows at (index /
    ``total`` of the duration) and decode up to the frame showing then. ``None`` when the stream
    has no usable timing."""
    import av

    with av.open(str(path)) as container:
        stream = _video_stream(container, path.name)
        tb = stream.time_base
        duration = _duration(container, stream)
        if tb is None or duration is None:
            return None
        start = float((stream.start_time or 0) * tb)
        frames, times = [], []
        for index in indices:
            target = start + index * duration / total
            container.seek(int(target / tb), stream=stream, backward=True, any_frame=False)
            shown = None  # the last frame whose time is <= target (or the first one after it)
            for frame in container.decode(stream):
                if frame.time is None:
                    return None
                if frame.time > target + _TIME_EPS:
                    if (
                        shown is None
                    ):  # the seek landed after the target: the first frame shows then
                        shown = frame
                    break
                shown = frame
            if shown is None:
                return None
            frames.append(_resize(shown.to_ndarray(format="rgb24"), max_side))
            times.append(float(shown.time))
    return frames, times


def sample_frames(
    path: str | Path, num: int = 8, max_side: int | None = None, seek_min_frames: int | None = None
) -> tuple[np.ndarray, list[float]]:
    """``num`` uniformly sampled RGB frames ``(num, H, W, 3)`` uint8 and their times in seconds.

    Clips of at least ``seek_min_frames`` frames (default: ``settings.model.seek_min_frames``) are
    sampled by seeking; shorter ones by one decoding pass. ``max_side`` bounds the longer side."""
    import av

    if num <= 0:
        raise ValueError(f"num must be positive, got {num}")
    path = Path(path)
    _check_file(path)
    if seek_min_frames is None:
        from shared.config import get_settings

        seek_min_frames = get_settings().model.seek_min_frames
    try:
        total = _count_frames(path, seek_min_frames)
        if total <= 0:
            raise MediaError(f"no decodable frames in {path.name}")
        if total >= seek_min_frames:
            sought = _by_seeking(path, uniform_indices(total, num), total, max_side)
            if sought is not None:
                return _same_size(sought[0]), sought[1]
        frames, times, seen = _by_index(path, uniform_indices(total, num), max_side)
        if not frames and seen:  # the header over-counted the frames: sample what really decodes
            frames, times, _ = _by_index(path, uniform_indices(seen, num), max_side)
        if not frames:
            raise MediaError(f"no decodable frames in {path.name}")
        return _same_size(frames), times
    except MediaError:
        raise
    except (
        av.error.FFmpegError,
        OSError,
        RuntimeError,
        ValueError,
    ) as exc:  # the reason is what matters
        raise MediaError(f"cannot decode {path.name}: {exc}") from exc


def load_frames_from_store(keys: Sequence[str], store=None) -> np.ndarray:  # noqa: ANN001
    """Frames stored as images (jpg/png) in the object store, as ``(T, H, W, 3)`` uint8."""
    from PIL import Image

    from shared.storage import get_store

    if not keys:
        raise MediaError("no frame keys given")
    store = store or get_store()
    out = []
    for key in keys:
        try:
            out.append(np.asarray(Image.open(io.BytesIO(store.get_bytes(key))).convert("RGB")))
        except Exception as exc:  # noqa: BLE001 - missing key, bad bytes, backend error: all unusable
            raise MediaError(f"cannot read stored frame {key}: {exc}") from exc
    shapes = {f.shape for f in out}
    if len(shapes) > 1:
        raise MediaError(f"stored frames differ in size ({sorted(shapes)}): {keys[0]} ...")
    return np.stack(out)
