"""Media primitives shared by every service: the ffmpeg binary, errors, probing, decoding."""

from __future__ import annotations

import shutil
from functools import lru_cache


class MediaError(Exception):
    """A media file that cannot be used; the message is the reason a user reads."""


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """An ffmpeg binary: the one on PATH, else the static build shipped by imageio-ffmpeg."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()
