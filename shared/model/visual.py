"""Visual inputs as the model sees them: images and videos resolved to pixels, video frames sampled
(uniform, ``num_frames``) and resized once as the reference preprocessing resizes them (SPEC §6.3,
qwen-vl-utils), kept in an LRU frame cache; and the visual token counts that batching and
truncation rely on.

Size: sampling, resizing and the token arithmetic are one contract with the reference
preprocessing; kept together so they cannot drift apart."""

from __future__ import annotations

import io
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shared.media import MediaError
from shared.model.inputs import VideoFrames

PATCH_FACTOR = 28  # Qwen2.5-VL: 14 px patches merged 2x2 — sizes snap to multiples of this
TEMPORAL_PATCH = 2  # two frames per temporal patch, so a video needs an even frame count
MAX_RATIO = 200  # the longest aspect ratio the processors accept


def smart_resize(
    height: int, width: int, min_pixels: float, max_pixels: float, factor: int = PATCH_FACTOR
) -> tuple[int, int]:
    """The size the reference preprocessing (qwen-vl-utils) gives a ``height`` x ``width`` picture:
    sides multiples of ``factor``, pixels within [min, max], aspect ratio kept as closely as it can
    (its own rounding, which differs from transformers' copy for pictures under ``factor``)."""
    if max(height, width) / max(1, min(height, width)) > MAX_RATIO:
        raise MediaError(f"unusable picture of {width}x{height}: aspect ratio beyond {MAX_RATIO}:1")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@dataclass(frozen=True)
class PixelBudget:
    """A processor's pixel limits (its ``size``: shortest_edge = min, longest_edge = max)."""

    min_pixels: int
    max_pixels: int

    def fit(self, height: int, width: int) -> tuple[int, int]:
        """The processor's target size for a ``height`` x ``width`` picture."""
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize as hf_resize

        try:
            return hf_resize(height, width, PATCH_FACTOR, self.min_pixels, self.max_pixels)
        except ValueError as exc:  # aspect ratio beyond 200:1
            raise MediaError(f"unusable picture of {width}x{height}: {exc}") from exc

    def tokens(self, height: int, width: int) -> int:
        h, w = self.fit(height, width)
        return (h // PATCH_FACTOR) * (w // PATCH_FACTOR)


@dataclass(frozen=True)
class VideoBudget:
    """How a video's frames are sized, as the reference does it: qwen-vl-utils' ``fetch_video``
    resizes every frame into [min, max] pixels, max being the smaller of the per-frame limit and an
    even share of the whole video's budget (never under 1.05 x min); the checkpoint's processor
    (``processor``: its video processor's limits) then resizes what it is given into its own."""

    min_pixels: int
    max_pixels: int
    total_pixels: int
    processor: PixelBudget | None = None

    def frame_max(self, num_frames: int) -> float:
        share = self.total_pixels / num_frames * TEMPORAL_PATCH
        return min(self.max_pixels, max(share, int(self.min_pixels * 1.05)))

    def fit(self, height: int, width: int, num_frames: int) -> tuple[int, int]:
        """The size the reference resizes a video's frames to (before the processor's limits)."""
        return smart_resize(height, width, self.min_pixels, self.frame_max(num_frames))

    def model_size(self, height: int, width: int, num_frames: int) -> tuple[int, int]:
        """The size the model sees: the reference's fit, then the processor's limits."""
        h, w = self.fit(height, width, num_frames)
        return self.processor.fit(h, w) if self.processor is not None else (h, w)

    def tokens(self, height: int, width: int, num_frames: int) -> int:
        """Visual tokens of ``num_frames`` frames of ``height`` x ``width``."""
        h, w = self.model_size(height, width, num_frames)
        return -(-num_frames // TEMPORAL_PATCH) * (h // PATCH_FACTOR) * (w // PATCH_FACTOR)

    def storage_size(self, height: int, width: int, num_frames: int) -> tuple[int, int]:
        """The size to store frames at so that the model later sees them as it sees the source:
        the reference's fit where that shrinks the frame, else the frame as it is (the embedder
        enlarges it as it would the source's)."""
        h, w = self.fit(height, width, num_frames)
        return (h, w) if h * w < height * width else (height, width)


@dataclass
class PreparedVideo:
    frames: (
        np.ndarray
    )  # (T, H, W, 3) uint8, T even, at the size the model sees (VideoBudget.model_size)
    fps: float  # the rate the frames were sampled at (second_per_grid_ts = 2 / fps)
    processor: PixelBudget | None = None  # the checkpoint's limits the processor applies on top

    def tokens(self) -> int:
        t, h, w = self.frames.shape[:3]
        if self.processor is not None:
            h, w = self.processor.fit(h, w)
        return (t // TEMPORAL_PATCH) * (h // PATCH_FACTOR) * (w // PATCH_FACTOR)


@dataclass
class FrameCache:
    """LRU of decoded and resized videos, keyed by where they came from. Thread-safe: one embedder
    serves the API's worker threads, so every lookup, insert and eviction (and the counters) happens
    under one lock. Two threads missing the same key both decode it; the last one stored wins."""

    capacity: int = 512
    _items: OrderedDict = field(default_factory=OrderedDict)
    hits: int = 0
    misses: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def get(self, key: Any):  # noqa: ANN201
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def peek(self, key: Any):  # noqa: ANN201 - no LRU or counter update (size estimates)
        with self._lock:
            return self._items.get(key)

    def put(self, key: Any, value: Any) -> None:
        if self.capacity <= 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def _resize_frames(frames: np.ndarray, budget: VideoBudget, num_frames: int) -> np.ndarray:
    """Frames at the size the model sees, resized as qwen-vl-utils resizes them (torchvision,
    bicubic, antialiased, on uint8). Where the checkpoint's processor would resize the reference's
    frames again (limits below the reference's fit), they are resized once, straight to the final
    size: the same grid, pixels within resampling tolerance of the two resizes, and none of the
    cost of enlarging a small frame only to shrink it again."""
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.functional import resize

    h, w = budget.model_size(frames.shape[1], frames.shape[2], num_frames)
    if (h, w) == frames.shape[1:3]:
        return frames
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    out = resize(video, [h, w], interpolation=InterpolationMode.BICUBIC, antialias=True)
    return out.permute(0, 2, 3, 1).contiguous().numpy()


def _uniform(frames: np.ndarray, num: int) -> np.ndarray:
    from shared.media.frames import uniform_indices

    if len(frames) == num:
        return frames
    return frames[uniform_indices(len(frames), num)]


def video_key(video: Any, num_frames: int, budget: VideoBudget) -> tuple | None:
    """The frame-cache key of a video input (``None``: arrays are not cached)."""
    if isinstance(video, VideoFrames):
        return ("store", video.keys, num_frames, budget)
    if isinstance(video, (str, Path)):
        path = Path(video)
        mtime = path.stat().st_mtime_ns if path.exists() else 0
        return ("file", str(path.resolve()), mtime, num_frames, budget)
    return None


def resolve_video(
    video: Any,
    num_frames: int,
    default_fps: float,
    cache: FrameCache,
    budget: VideoBudget,
    seek_min_frames: int | None = None,
) -> PreparedVideo:
    """``num_frames`` uniform frames at the pixel budget, from a path, an array or stored frames.
    The fps passed on (``second_per_grid_ts = 2 / fps``) is ``num_frames / duration`` for a file
    (``shared.media.frames.sampling_fps``, as the same clip's stored frames carry it),
    ``VideoFrames.fps`` for stored frames, else ``default_fps``."""
    if num_frames % TEMPORAL_PATCH:
        raise ValueError(
            f"num_frames must be even (temporal patch {TEMPORAL_PATCH}), got {num_frames}"
        )
    if isinstance(video, np.ndarray):
        if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8 or not len(video):
            raise ValueError(
                f"a video array must be (T>0, H, W, 3) uint8, got {video.shape} {video.dtype}"
            )
        frames = _resize_frames(_uniform(video, num_frames), budget, num_frames)
        return PreparedVideo(frames, default_fps, budget.processor)
    key = video_key(video, num_frames, budget)
    if key is None:
        raise TypeError(
            f"unsupported video input: {type(video).__name__} (a path, an array or VideoFrames)"
        )
    hit = cache.get(key)
    if hit is not None:
        if isinstance(
            video, VideoFrames
        ):  # the frames are cached; the fps is the caller's (not in the key)
            return PreparedVideo(hit.frames, video.fps or default_fps, budget.processor)
        return hit
    if isinstance(video, VideoFrames):
        from shared.media.frames import load_frames_from_store, uniform_indices

        keys = video.keys  # read only the frames that are used
        if keys and len(keys) != num_frames:
            keys = tuple(keys[i] for i in uniform_indices(len(keys), num_frames))
        frames = load_frames_from_store(keys)
        fps = video.fps or default_fps
    else:
        from shared.media.frames import sample_frames, sampling_fps, video_duration

        frames, _times = sample_frames(video, num_frames, seek_min_frames=seek_min_frames)
        # one definition for every clip, as its stored frames carry it: frames / duration (SPEC
        # §6.3), not the spacing of the first and last sampled frames (snapped to the source's frame
        # grid)
        fps = sampling_fps(num_frames, video_duration(video)) or default_fps
    prepared = PreparedVideo(_resize_frames(frames, budget, num_frames), fps, budget.processor)
    cache.put(key, prepared)
    return prepared


def video_tokens_estimate(
    video: Any, num_frames: int, cache: FrameCache, budget: VideoBudget
) -> int:
    """Visual tokens of a video without decoding it (cache, array shape, or the stream/jpg header);
    0 when it cannot be told — the real decode reports the problem later."""
    try:
        key = video_key(video, num_frames, budget)
        hit = cache.peek(key) if key is not None else None
        if hit is not None:
            return hit.tokens()
        if isinstance(video, np.ndarray) and video.ndim == 4:
            return budget.tokens(video.shape[1], video.shape[2], num_frames)
        if isinstance(video, VideoFrames) and video.keys:
            from PIL import Image

            from shared.storage import get_store

            with get_store().open(video.keys[0]) as fh:
                w, h = Image.open(fh).size
            return budget.tokens(h, w, num_frames)
        if isinstance(video, (str, Path)):
            import av

            with av.open(str(video)) as container:
                ctx = container.streams.video[0].codec_context
                return budget.tokens(ctx.height, ctx.width, num_frames)
    except Exception:  # noqa: BLE001 - only an estimate; resolve_video raises the real error
        return 0
    return 0


def resolve_image(image: Any):  # noqa: ANN201 - returns a PIL image
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[-1] not in (3, 4) or image.dtype != np.uint8:
            raise ValueError(
                f"an image array must be (H, W, 3|4) uint8, got {image.shape} {image.dtype}"
            )
        return Image.fromarray(image).convert("RGB")
    if isinstance(image, str) and image.startswith("store://"):
        from shared.storage import get_store

        try:
            return Image.open(io.BytesIO(get_store().get_bytes(image[len("store://") :]))).convert(
                "RGB"
            )
        except Exception as exc:  # noqa: BLE001 - missing key, bad bytes, backend error: all unusable
            raise MediaError(f"cannot read stored image {image}: {exc}") from exc
    if isinstance(image, (str, Path)):
        try:
            return Image.open(image).convert("RGB")
        except Exception as exc:  # noqa: BLE001
            raise MediaError(f"cannot read image {image}: {exc}") from exc
    raise TypeError(
        f"unsupported image input: {type(image).__name__} (PIL image, array, path or store://key)"
    )


def image_tokens_estimate(image: Any, budget: PixelBudget) -> int:
    """Visual tokens of an image from its size alone (header only for files and stored images)."""
    from PIL import Image

    try:
        if isinstance(image, Image.Image):
            w, h = image.size
        elif isinstance(image, np.ndarray):
            h, w = image.shape[:2]
        elif isinstance(image, str) and image.startswith("store://"):
            from shared.storage import get_store

            with get_store().open(image[len("store://") :]) as fh:
                w, h = Image.open(fh).size
        elif isinstance(image, (str, Path)):
            with Image.open(image) as im:
                w, h = im.size
        else:
            return 0
        return budget.tokens(h, w)
    except Exception:  # noqa: BLE001 - only an estimate; resolve_image raises the real error
        return 0
