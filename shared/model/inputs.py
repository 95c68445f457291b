"""What can be embedded: text, image, video, or a composition, as a query (with an instruction)
or a candidate (without); and a stable key of an input for embedding caches."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


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
        for name in ("text", "instruction"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"EmbedInput.{name} must be a string, got {type(value).__name__}")


def _visual_part(vis: Any) -> bytes:
    if vis is None:
        return b"none"
    if isinstance(vis, np.ndarray):
        return b"array" + repr((vis.shape, str(vis.dtype))).encode() + vis.tobytes()
    if isinstance(vis, VideoFrames):
        return b"frames" + repr((vis.keys, vis.fps)).encode()
    if isinstance(vis, (str, Path)):
        return b"path" + str(vis).encode()
    if hasattr(vis, "tobytes") and hasattr(vis, "size"):  # a PIL image
        return b"pil" + repr((vis.mode, vis.size)).encode() + vis.tobytes()
    raise TypeError(f"unsupported visual input: {type(vis).__name__}")


def item_key(item: EmbedInput) -> str:
    """A stable key of an input's content (for embedding caches): same input, same key."""
    h = hashlib.sha256()
    for part in (
        repr(item.instruction).encode(),
        repr(item.text).encode(),
        _visual_part(item.image),
        _visual_part(item.video),
    ):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()
