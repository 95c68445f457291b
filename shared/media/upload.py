"""Media a client uploads (search queries): decoded only from a private per-request temp dir, only
by an allow-list of demuxers and image decoders, and only after the declared size (width x height,
x frames for a video) fits the configured pixel budget — so a request cannot make ffmpeg open
another file (concat lists, playlists, external references) nor decode a bomb.

The container is identified from the bytes through a file object (no ffmpeg protocol at all, and
``protocol_whitelist`` empty for anything the demuxer would open), its name checked against
``api.video_formats``; only then is the private file decoded with ``sample_frames``, which probes
the same bytes to the same demuxer. Errors are ``MediaError`` with a short reason that never names
the server's paths."""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from shared.config import get_settings
from shared.media import MediaError


@contextmanager
def private_file(data: bytes, name: str = "upload") -> Iterator[Path]:
    """``data`` written to a file alone in a fresh 0700 directory, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="univr-upload-"))
    try:
        path = folder / name
        with open(path, "xb") as fh:
            fh.write(data)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _open_options(formats: list[str]) -> dict[str, str]:
    return {"format_whitelist": ",".join(formats), "protocol_whitelist": "none"}


def check_video(data: bytes) -> dict[str, float | int | str]:
    """The declared size of an uploaded video, read from its headers only; ``MediaError`` if its
    container is not allowed or it would decode to more than the pixel budget."""
    import av

    api = get_settings().api
    if not data:
        raise MediaError("video is empty")
    try:
        with av.open(
            io.BytesIO(data), mode="r", options=_open_options(api.video_formats)
        ) as container:
            if not container.streams.video:
                raise MediaError("no video stream")
            stream = container.streams.video[0]
            fmt = container.format.name
            width, height = stream.codec_context.width, stream.codec_context.height
            rate = float(stream.average_rate or stream.guessed_rate or 30)
            seconds = (
                float(stream.duration * stream.time_base)
                if stream.duration and stream.time_base
                else (container.duration / av.time_base if container.duration else 0.0)
            )
            frames = int(stream.frames or round(seconds * rate))
    except MediaError:
        raise
    except (av.error.FFmpegError, OSError, ValueError, TypeError, ZeroDivisionError):
        raise MediaError(
            f"not a video in an accepted container ({', '.join(api.video_formats)})"
        ) from None
    if width <= 0 or height <= 0:
        raise MediaError("video declares no frame size")
    if width * height > api.max_frame_pixels:
        raise MediaError(f"video frames are {width}x{height}, over {api.max_frame_pixels} pixels")
    if seconds > api.max_video_seconds:
        raise MediaError(f"video is longer than {api.max_video_seconds:g} s")
    if width * height * max(frames, 1) > api.max_video_pixels:
        raise MediaError(f"video would decode to more than {api.max_video_pixels} pixels")
    return {"format": fmt, "width": width, "height": height, "frames": frames, "seconds": seconds}


def decode_video(data: bytes, num: int, max_side: int | None = None) -> np.ndarray:
    """``num`` uniformly sampled frames of an uploaded video, after ``check_video``."""
    from shared.media.frames import sample_frames

    check_video(data)
    with private_file(data) as path:
        try:
            frames, _times = sample_frames(path, num, max_side=max_side)
        except MediaError:
            raise MediaError("video cannot be decoded") from None
    return frames


def decode_image(data: bytes):  # noqa: ANN201 - a PIL image
    """An uploaded image as RGB, after its declared size fits ``api.max_image_pixels``; only the
    decoders in ``api.image_formats`` are tried."""
    from PIL import Image, UnidentifiedImageError

    api = get_settings().api
    Image.MAX_IMAGE_PIXELS = api.max_image_pixels
    try:
        image = Image.open(io.BytesIO(data), formats=api.image_formats)
        width, height = image.size
        if width * height > api.max_image_pixels:
            raise MediaError(f"image is {width}x{height}, over {api.max_image_pixels} pixels")
        image.verify()
        image = Image.open(io.BytesIO(data), formats=api.image_formats)
        return image.convert("RGB")
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaError(f"image is over {api.max_image_pixels} pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise MediaError(f"not a readable image ({', '.join(api.image_formats)})") from None
