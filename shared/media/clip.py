"""Clip extraction with ffmpeg-python: exact spans, re-encoded to H.264 (stream copy would snap
to keyframes)."""

from __future__ import annotations

from pathlib import Path

import ffmpeg

from shared.media import MediaError, ffmpeg_exe


def extract_clip(src: str | Path, dst: str | Path, start_s: float, end_s: float, max_side: int = 448) -> Path:
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    scale = f"scale='if(gt(iw,ih),min({max_side},iw),-2)':'if(gt(iw,ih),-2,min({max_side},ih))'"
    stream = (ffmpeg.input(str(src), ss=f"{start_s:.3f}", t=f"{end_s - start_s:.3f}")
              .output(str(dst), vcodec="libx264", preset="ultrafast", crf=23, pix_fmt="yuv420p", an=None,
                      vf=f"{scale},pad=ceil(iw/2)*2:ceil(ih/2)*2", movflags="+faststart", map="0:v:0")
              .overwrite_output())
    try:
        stream.run(cmd=ffmpeg_exe(), quiet=True)
    except ffmpeg.Error as exc:
        raise MediaError(f"ffmpeg could not cut {start_s:.2f}-{end_s:.2f}s: {exc.stderr.decode(errors='replace')[-300:]}") from exc
    return dst


def remux(src: str | Path, dst: str | Path) -> Path:
    """Repair what a remux can (broken index, odd container) without re-encoding."""
    try:
        ffmpeg.input(str(src)).output(str(dst), c="copy", map="0:v:0", movflags="+faststart").overwrite_output().run(
            cmd=ffmpeg_exe(), quiet=True)
    except ffmpeg.Error as exc:
        raise MediaError(f"remux failed: {exc.stderr.decode(errors='replace')[-300:]}") from exc
    return Path(dst)
