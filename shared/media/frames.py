"""Uniform frame sampling: exactly ``num`` frames spread over the whole clip (SPEC §1.4, §6.3),
decoded with PyAV; and frames stored as images in the object store."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shared.media import MediaError


def _resize(frame: np.ndarray, max_side: int | None) -> np.ndarray:
    if not max_side or max(frame.shape[:2]) <= max_side:
        return frame
    from PIL import Image

    h, w = frame.shape[:2]
    scale = max_side / max(h, w)
    return np.asarray(Image.fromarray(frame).resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR))


def uniform_indices(total: int, num: int) -> list[int]:
    """``num`` indices spread uniformly over ``total`` frames (repeating when there are fewer)."""
    if total <= 0:
        raise MediaError("video has no frames")
    return [min(total - 1, int((i + 0.5) * total / num)) for i in range(num)]


def sample_frames(path: str | Path, num: int = 8, max_side: int | None = None) -> tuple[np.ndarray, list[float]]:
    """``num`` uniformly sampled RGB frames ``(num, H, W, 3)`` uint8 and their times in seconds."""
    import av

    path = Path(path)
    if not path.is_file():
        raise MediaError(f"no such video file: {path}")
    if path.stat().st_size == 0:
        raise MediaError(f"empty file (0 bytes): {path}")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"no video stream in {path.name}")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            frames, times = [], []
            for frame in container.decode(stream):
                frames.append(_resize(frame.to_ndarray(format="rgb24"), max_side))
                times.append(float(frame.time or 0.0))
    except MediaError:
        raise
    except Exception as exc:  # noqa: BLE001 - PyAV raises many kinds; the reason is what matters
        raise MediaError(f"cannot decode {path.name}: {exc}") from exc
    if not frames:
        raise MediaError(f"no decodable frames in {path.name}")
    idx = uniform_indices(len(frames), num)
    return np.stack([frames[i] for i in idx]), [times[i] for i in idx]


def load_frames_from_store(keys: Sequence[str], store=None) -> np.ndarray:  # noqa: ANN001
    """Frames stored as images (jpg/png) in the object store, as ``(T, H, W, 3)`` uint8."""
    import io

    from PIL import Image

    from shared.storage import get_store

    store = store or get_store()
    out = []
    for key in keys:
        try:
            out.append(np.asarray(Image.open(io.BytesIO(store.get_bytes(key))).convert("RGB")))
        except Exception as exc:  # noqa: BLE001
            raise MediaError(f"cannot read stored frame {key}: {exc}") from exc
    if not out:
        raise MediaError("no frame keys given")
    return np.stack(out)
