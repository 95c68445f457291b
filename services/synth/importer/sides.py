"""A record's fields into pair sides. Text is taken as is (a list: one element drawn by a hash of
the record's key); an image (bytes, a PIL image, an HF image struct or a path inside the source
folder) is checked by decoding it and stored as JPEG under ``imports/<dataset>/``; a video
(bytes or a path) is sampled to ``synth.frames_per_clip`` frames stored there too, and named as a
whole video (``video:<id>``: no clip row stands behind it). A field that cannot become a side
raises ``Unusable`` with the reason."""

from __future__ import annotations

import hashlib
import io
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared import layout

KINDS = {"T": "text", "I": "image", "V": "video"}


class Unusable(ValueError):
    """A record's field that cannot become a side."""


@dataclass
class Context:
    dataset: str
    base: Path  # relative media paths resolve against it
    store: Any
    frames: int
    frame_side: int | None


def task_kinds(task: str) -> tuple[str, str]:
    """T2V → ("text", "video"). Composed inputs (TI2V, TV2V) are not importable from one field."""
    q, _, y = task.partition("2")
    if q not in KINDS or y not in KINDS:
        raise ValueError(f"task {task!r}: import takes one-modality sides (T, I or V on each side)")
    return KINDS[q], KINDS[y]


def item_id(dataset: str, key: str) -> str:
    return "imp-" + hashlib.sha256(f"{dataset}\x1f{key}".encode()).hexdigest()[:32]


def field(record: dict[str, Any], path: str) -> Any:
    """A dotted path into a record (``json.Caption``, ``txt_posFacts.0.fact``); None if absent."""
    value: Any = record
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list | tuple) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
        if value is None:
            return None
    return value


def _pick(value: Any, key: str) -> Any:
    if isinstance(value, list | tuple):
        if not value:
            return None
        return value[zlib.crc32(key.encode()) % len(value)]
    return value


def _local(value: str, ctx: Context) -> Path:
    """A media path of the dataset: relative to its folder and inside it (a record cannot name
    files elsewhere)."""
    base = ctx.base.resolve()
    path = (base / value).resolve()
    if base not in path.parents:
        raise Unusable(f"media path {value!r} is outside the dataset's folder")
    if not path.is_file():
        raise Unusable(f"media file {value!r} not found")
    return path


def _image(value: Any, key: str, ctx: Context) -> dict[str, Any]:
    from PIL import Image

    if isinstance(value, dict):  # HF's image struct {"bytes", "path"}
        value = value.get("bytes") or value.get("path")
    try:
        if isinstance(value, Image.Image):
            img = value
        elif isinstance(value, bytes | bytearray):
            img = Image.open(io.BytesIO(value))
        elif isinstance(value, str):
            img = Image.open(_local(value, ctx))
        else:
            raise Unusable(f"not an image: {type(value).__name__}")
        buf = io.BytesIO()
        img.convert("RGB").save(buf, format="JPEG", quality=90)
    except (OSError, Image.DecompressionBombError) as exc:
        raise Unusable(f"image does not decode: {exc}") from exc
    k = layout.import_image_key(ctx.dataset, item_id(ctx.dataset, key))
    ctx.store.put_bytes(k, buf.getvalue(), "image/jpeg")
    return {"image": k}


def _video(value: Any, key: str, ctx: Context) -> dict[str, Any]:
    from PIL import Image

    from shared.media import MediaError
    from shared.media.frames import sample_frames, sampling_fps, video_duration

    with tempfile.TemporaryDirectory(prefix="univr-import-") as tmp:
        if isinstance(value, bytes | bytearray):
            path = Path(tmp) / "video.mp4"
            path.write_bytes(value)
        elif isinstance(value, str):
            path = _local(value, ctx)
        else:
            raise Unusable(f"not a video: {type(value).__name__}")
        try:
            frames, _ = sample_frames(path, ctx.frames, max_side=ctx.frame_side)
            duration = video_duration(path)
        except MediaError as exc:
            raise Unusable(str(exc)) from exc
    vid = item_id(ctx.dataset, key)
    prefix = layout.import_frame_prefix(ctx.dataset, vid)
    keys = [layout.frame_key(prefix, i) for i in range(len(frames))]
    for k, frame in zip(keys, frames, strict=True):
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="JPEG", quality=90)
        ctx.store.put_bytes(k, buf.getvalue(), "image/jpeg")
    video = {"clip_id": layout.video_ref(vid), "frames": keys, "video_id": vid}
    fps = sampling_fps(len(keys), duration)
    return {"video": {**video, "fps": fps} if fps else video}


def side(kind: str, value: Any, key: str, ctx: Context) -> dict[str, Any]:
    value = _pick(value, key)
    if value is None:
        raise Unusable(f"no {kind}")
    if kind == "text":
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        if not text.strip():
            raise Unusable("empty text")
        return {"text": text.strip()}
    if kind == "image":
        return _image(value, key, ctx)
    return _video(value, key, ctx)
