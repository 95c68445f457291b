"""What can be embedded: text, image, video, or a composition, as a query (with an instruction)
or a candidate (without). Visual inputs are resolved to arrays here, with a frame cache."""

from __future__ import annotations

import hashlib
import io
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shared.media import MediaError


@dataclass(frozen=True)
class VideoFrames:
    """A video given as frames stored in the object store (as synth stores them)."""

    keys: tuple[str, ...]
    fps: float | None = None  # sampling rate of the stored frames, if known

    def __init__(self, keys, fps: float | None = None):  # noqa: ANN001
        object.__setattr__(self, "keys", tuple(keys))
        object.__setattr__(self, "fps", fps)


@dataclass
class EmbedInput:
    """One thing to embed. ``instruction`` set: a query (instruction in the system turn);
    ``None``: a candidate (default system text)."""

    text: str | None = None
    image: Any = None  # PIL image | (H, W, 3) uint8 array | file path | "store://<key>"
    video: Any = None  # file path | (T, H, W, 3) uint8 array | VideoFrames
    instruction: str | None = None

    def __post_init__(self) -> None:
        if self.text is None and self.image is None and self.video is None:
            raise ValueError("an EmbedInput needs at least one of text, image, video")


@dataclass
class PreparedVideo:
    frames: np.ndarray  # (T, H, W, 3) uint8, T even
    fps: float


@dataclass
class FrameCache:
    """LRU of decoded (and resized) videos, keyed by where they came from."""

    capacity: int = 512
    _items: OrderedDict = field(default_factory=OrderedDict)
    hits: int = 0
    misses: int = 0

    def get(self, key: Any):  # noqa: ANN201
        if key in self._items:
            self._items.move_to_end(key)
            self.hits += 1
            return self._items[key]
        self.misses += 1
        return None

    def put(self, key: Any, value: Any) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)


def _even(frames: np.ndarray) -> np.ndarray:
    return frames if len(frames) % 2 == 0 else np.concatenate([frames, frames[-1:]])


def resolve_video(video: Any, num_frames: int, default_fps: float, cache: FrameCache, max_side: int | None = None) -> PreparedVideo:
    if isinstance(video, np.ndarray):
        if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
            raise ValueError(f"a video array must be (T, H, W, 3) uint8, got {video.shape} {video.dtype}")
        return PreparedVideo(_even(video), default_fps)
    if isinstance(video, VideoFrames):
        key = ("store", video.keys)
        hit = cache.get(key)
        if hit is None:
            from shared.media.frames import load_frames_from_store

            frames = load_frames_from_store(video.keys)
            if len(frames) != num_frames:
                from shared.media.frames import uniform_indices

                frames = frames[uniform_indices(len(frames), num_frames)]
            hit = PreparedVideo(_even(frames), video.fps or default_fps)
            cache.put(key, hit)
        return hit
    if isinstance(video, (str, Path)):
        path = Path(video)
        key = ("file", str(path.resolve()), path.stat().st_mtime_ns if path.exists() else 0, num_frames, max_side)
        hit = cache.get(key)
        if hit is None:
            from shared.media.frames import sample_frames

            frames, times = sample_frames(path, num_frames, max_side)
            span = (times[-1] - times[0]) if len(times) > 1 else 0.0
            fps = (len(times) - 1) / span if span > 0 else default_fps
            hit = PreparedVideo(_even(frames), fps)
            cache.put(key, hit)
        return hit
    raise TypeError(f"unsupported video input: {type(video).__name__}")


def resolve_image(image: Any):  # noqa: ANN201 - returns a PIL image
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, np.ndarray):
        return Image.fromarray(image.astype(np.uint8)).convert("RGB")
    if isinstance(image, str) and image.startswith("store://"):
        from shared.storage import get_store

        try:
            return Image.open(io.BytesIO(get_store().get_bytes(image[len("store://"):]))).convert("RGB")
        except Exception as exc:  # noqa: BLE001
            raise MediaError(f"cannot read stored image {image}: {exc}") from exc
    if isinstance(image, (str, Path)):
        try:
            return Image.open(image).convert("RGB")
        except Exception as exc:  # noqa: BLE001
            raise MediaError(f"cannot read image {image}: {exc}") from exc
    raise TypeError(f"unsupported image input: {type(image).__name__}")


def item_key(item: EmbedInput) -> str:
    """A stable key of an input (for embedding caches)."""
    h = hashlib.sha256()
    for part in (item.instruction, item.text):
        h.update(repr(part).encode())
    for vis in (item.image, item.video):
        if isinstance(vis, np.ndarray):
            h.update(vis.tobytes())
        elif isinstance(vis, VideoFrames):
            h.update(repr(vis.keys).encode())
        else:
            h.update(repr(str(vis)).encode())
    return h.hexdigest()
