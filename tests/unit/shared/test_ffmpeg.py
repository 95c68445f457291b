"""One ffmpeg: the pinned imageio-ffmpeg build unless ``media.ffmpeg`` names another, whatever is
first on PATH; a binary that does not run or is too old is refused with a clear reason."""

from __future__ import annotations

import os
from pathlib import Path

import imageio_ffmpeg
import pytest

from shared.config import get_settings
from shared.media import MediaError, _resolve_ffmpeg, ffmpeg_exe, ffmpeg_version


def _fake_ffmpeg(folder: Path, version: str) -> Path:
    """A program named ffmpeg that reports ``version`` (an odd machine's ffmpeg on PATH)."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "ffmpeg"
    exe.write_text(
        f"#!/bin/sh\necho 'ffmpeg version {version} Copyright (c) the FFmpeg developers'\n"
    )
    exe.chmod(0o755)
    return exe


@pytest.fixture(autouse=True)
def _fresh_cache():
    _resolve_ffmpeg.cache_clear()
    yield
    _resolve_ffmpeg.cache_clear()


def test_default_is_the_pinned_build_even_with_another_ffmpeg_on_path(tmp_path, monkeypatch):
    _fake_ffmpeg(tmp_path / "bin", "4.4.2-0+deb11u1")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert ffmpeg_exe() == imageio_ffmpeg.get_ffmpeg_exe()


def test_media_ffmpeg_chooses_a_program_on_path(tmp_path, monkeypatch):
    fake = _fake_ffmpeg(tmp_path / "bin", "5.1.6-0+deb12u1")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("UNIVR_MEDIA__FFMPEG", "ffmpeg")
    get_settings.cache_clear()
    assert ffmpeg_exe() == str(fake)
    assert ffmpeg_version(str(fake)) == "5.1.6-0+deb12u1"


def test_too_old_missing_or_broken_ffmpeg_is_a_clear_error(tmp_path, monkeypatch):
    old = _fake_ffmpeg(tmp_path / "old", "4.4.2")
    with pytest.raises(MediaError, match=r"version 4\.4; univr needs 5\.0"):
        ffmpeg_version(str(old))
    monkeypatch.setenv("UNIVR_MEDIA__FFMPEG", "no-such-ffmpeg-here")
    get_settings.cache_clear()
    with pytest.raises(MediaError, match="no such program on PATH"):
        ffmpeg_exe()
    broken = tmp_path / "broken"
    broken.write_text("not a program")
    with pytest.raises(MediaError, match="does not run"):
        ffmpeg_version(str(broken))


def test_the_pinned_build_reports_its_version():
    assert int(ffmpeg_version(imageio_ffmpeg.get_ffmpeg_exe()).split(".")[0]) >= 5
