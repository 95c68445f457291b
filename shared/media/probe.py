"""Probe and integrity check of a source video (PyAV; no ffprobe needed), with bounded limits."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from shared.config import SynthSettings
from shared.media import MediaError


@dataclass
class ProbeResult:
    duration_s: float
    width: int
    height: int
    fps: float
    codec: str
    frame_count: int | None
    size_bytes: int

    def as_dict(self) -> dict:
        return asdict(self)


def probe(path: str | Path) -> ProbeResult:
    """Read the container and the first video stream's header; raise MediaError with a reason."""
    import av

    path = Path(path)
    if not path.exists():
        raise MediaError("file not found")
    size = path.stat().st_size
    if size == 0:
        raise MediaError("empty file (0 bytes)")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError("no video stream (audio-only or not a video)")
            stream = container.streams.video[0]
            ctx = stream.codec_context
            fps = float(stream.average_rate or stream.guessed_rate or 0) or 0.0
            duration = None
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            if not duration and container.duration:
                duration = container.duration / 1_000_000
            return ProbeResult(
                duration_s=float(duration or 0.0),
                width=int(ctx.width or 0),
                height=int(ctx.height or 0),
                fps=fps,
                codec=ctx.name or "unknown",
                frame_count=int(stream.frames) or None,
                size_bytes=size,
            )
    except MediaError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise MediaError(f"unreadable container: {exc}") from exc


def check_limits(p: ProbeResult, s: SynthSettings) -> str | None:
    """The reason a probed video is out of bounds, or None."""
    if p.size_bytes > s.max_file_bytes:
        return f"file too large ({p.size_bytes} bytes > {s.max_file_bytes})"
    if p.width <= 0 or p.height <= 0:
        return "no frame size in the stream header"
    if min(p.width, p.height) < s.min_side:
        return f"resolution too small ({p.width}x{p.height}, min side {s.min_side})"
    if p.width * p.height > s.max_pixels:
        return f"resolution too large ({p.width}x{p.height} > {s.max_pixels} pixels)"
    if p.duration_s > s.max_duration_s:
        return f"too long ({p.duration_s:.0f} s > {s.max_duration_s:.0f} s)"
    if p.fps > 240:
        return f"implausible frame rate ({p.fps:.0f} fps)"
    return None
