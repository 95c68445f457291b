"""Media primitives shared by every service: the ffmpeg binary, errors, probing, decoding."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from functools import lru_cache

log = logging.getLogger(__name__)

# Oldest ffmpeg whose stream copy with edit lists and filters the media code relies on (Debian 12
# ships 5.1); an older one is refused rather than producing subtly different clips.
MIN_FFMPEG_MAJOR = 5


class MediaError(Exception):
    """A media file that cannot be used; the message is the reason a user reads."""


def ffmpeg_exe() -> str:
    """The ffmpeg binary: ``media.ffmpeg`` when set (a path or a name on PATH), else the static
    build pinned with imageio-ffmpeg, never whichever ffmpeg happens to be first on PATH."""
    from shared.config import get_settings

    return _resolve_ffmpeg(get_settings().media.ffmpeg)


@lru_cache(maxsize=4)
def _resolve_ffmpeg(choice: str) -> str:
    if choice:
        exe = choice if "/" in choice else shutil.which(choice)
        if not exe:
            raise MediaError(f"media.ffmpeg={choice!r}: no such program on PATH")
    else:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    version = ffmpeg_version(exe)
    log.info("ffmpeg %s (%s)", version, exe)
    return exe


def ffmpeg_version(exe: str) -> str:
    """The version ``exe -version`` reports; a binary that does not run, or is older than
    ``MIN_FFMPEG_MAJOR``, is a ``MediaError`` naming it."""
    try:
        out = subprocess.run(
            [exe, "-hide_banner", "-version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise MediaError(f"ffmpeg {exe!r} does not run: {exc}") from None
    match = re.search(r"ffmpeg version \D*(\d+)\.(\d+)(\S*)", out)
    if not match:
        raise MediaError(f"ffmpeg {exe!r}: unrecognised version line {out.splitlines()[:1]}")
    if int(match.group(1)) < MIN_FFMPEG_MAJOR:
        raise MediaError(
            f"ffmpeg {exe!r} is version {match.group(1)}.{match.group(2)}; "
            f"univr needs {MIN_FFMPEG_MAJOR}.0 or newer (set media.ffmpeg)"
        )
    return f"{match.group(1)}.{match.group(2)}{match.group(3)}"
