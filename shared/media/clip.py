"""Clip extraction. The default is an in-process stream copy (PyAV): one pass over the source's
packets writes every clip, each starting at the keyframe before its span with an MP4 edit list that
hides the pre-roll, so players and decoders show exactly [start, end) — no re-encode, no ffmpeg
process per clip. Codecs MP4 cannot carry, or a copy that fails, fall back to an exact re-encode
with ffmpeg-python."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import ffmpeg

from shared.media import MediaError, ffmpeg_exe

if TYPE_CHECKING:
    from av.video.stream import VideoStream

# Codecs the MP4 muxer carries as they are.
COPYABLE_CODECS = frozenset({"h264", "hevc", "av1", "vp9", "mpeg4"})


def extract_clip(
    src: str | Path, dst: str | Path, start_s: float, end_s: float, max_side: int = 448
) -> Path:
    """Re-encode [start_s, end_s) to H.264 at most ``max_side`` pixels on the long side."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    scale = f"scale='if(gt(iw,ih),min({max_side},iw),-2)':'if(gt(iw,ih),-2,min({max_side},ih))'"
    stream = (
        ffmpeg.input(str(src), ss=f"{start_s:.3f}", t=f"{end_s - start_s:.3f}")
        .output(
            str(dst),
            vcodec="libx264",
            preset="ultrafast",
            crf=23,
            pix_fmt="yuv420p",
            an=None,
            vf=f"{scale},pad=ceil(iw/2)*2:ceil(ih/2)*2",
            movflags="+faststart",
            map="0:v:0",
        )
        .overwrite_output()
    )
    try:
        stream.run(cmd=ffmpeg_exe(), quiet=True)
    except ffmpeg.Error as exc:
        raise MediaError(
            f"ffmpeg could not cut {start_s:.2f}-{end_s:.2f}s"
            f": {exc.stderr.decode(errors='replace')[-300:]}"
        ) from exc
    return dst


def _span_bounds(ist: VideoStream, spans: Sequence[tuple[float, float]]) -> list[tuple[int, int]]:
    """Each span in the stream's own time base, from its first timestamp."""
    tb = ist.time_base
    if tb is None:
        raise MediaError("a video stream without a time base")
    origin = ist.start_time or 0
    return [(origin + round(a / tb), origin + round(b / tb)) for a, b in spans]


def copy_clips(
    src: str | Path, spans: Sequence[tuple[float, float]], dsts: Sequence[str | Path]
) -> list[Path]:
    """Write each of the ordered, non-overlapping ``spans`` (seconds from the first frame) of the
    first video stream to its ``dsts`` entry by stream copy. Raises MediaError when the codec cannot
    be copied into MP4 or the source's packets lack timestamps."""
    import av

    if len(spans) != len(dsts):
        raise ValueError("one destination per span")
    written: list[Path] = []
    try:
        with av.open(str(src)) as inp:
            ist = inp.streams.video[0]
            if ist.codec_context.name not in COPYABLE_CODECS:
                raise MediaError(f"codec {ist.codec_context.name} is not copied into MP4")
            bounds = _span_bounds(ist, spans)
            # packets since the last keyframe: the pre-roll of a span starting here
            gop: list[_Packet] = []
            k, clip = 0, None
            for raw in inp.demux(ist):
                if raw.pts is None or raw.dts is None:
                    if raw.size:
                        raise MediaError("packets without timestamps")
                    continue  # the demuxer's flush packet
                if raw.is_keyframe:
                    gop = []
                pkt = _Packet(bytes(raw), raw.pts, raw.dts, raw.is_keyframe, raw.duration)
                gop.append(pkt)
                while k < len(bounds):
                    if clip is None:
                        if pkt.pts < bounds[k][0]:
                            break
                        if not gop[
                            0
                        ].keyframe:  # a stream that starts mid-GOP: nothing to decode from
                            raise MediaError("no keyframe before the span")
                        clip = _ClipWriter(
                            Path(dsts[k]), ist, max(bounds[k][0], gop[0].pts), bounds[k][1]
                        )
                        for p in gop:  # the keyframe and what follows it, up to this packet
                            clip.mux(p)
                        break
                    if pkt.dts >= clip.end:  # every frame shown before `end` is decoded before it
                        written.append(clip.close())
                        clip, k = None, k + 1
                        continue
                    clip.mux(pkt)
                    break
            if clip is not None:
                written.append(clip.close())
    except MediaError:
        raise
    except Exception as exc:  # noqa: BLE001 - any muxing failure means: re-encode instead
        raise MediaError(f"stream copy failed: {exc}") from exc
    if len(written) != len(spans):
        raise MediaError(f"stream copy wrote {len(written)} of {len(spans)} clips")
    return written


@dataclass(frozen=True)
class _Packet:
    """A source packet's payload and timing (a packet may go into two clips: its own span and, as
    pre-roll, the next one; the muxer consumes what it is given, so each clip gets a fresh copy)."""

    data: bytes
    pts: int
    dts: int
    keyframe: bool
    duration: int | None


class _ClipWriter:
    """One clip being written: packets shifted so that ``start`` is 0 (the span's start, or its
    first frame when that is a keyframe shown later: a clip never opens on an empty edit). Pre-roll
    packets get negative times, which the MP4 muxer turns into an edit list; frames decoded only as
    references for the last frames of the span (shown at or after ``end``) are hidden by ending the
    edit at the first of them."""

    def __init__(self, dst: Path, template, start: int, end: int) -> None:  # noqa: ANN001 - a PyAV stream
        import av

        dst.parent.mkdir(parents=True, exist_ok=True)
        self.dst, self.start, self.end, self.tb = dst, start, end, template.time_base
        self.out = av.open(
            str(dst), "w", format="mp4", options={"movflags": "+faststart", "use_editlist": "1"}
        )
        self.ost = self.out.add_stream_from_template(template)
        self.tail: int | None = None  # earliest pts at or after `end` among the packets written

    def mux(self, src: _Packet) -> None:
        import av

        if src.pts >= self.end:
            self.tail = src.pts if self.tail is None else min(self.tail, src.pts)
        pkt = av.Packet(src.data)
        pkt.pts, pkt.dts, pkt.is_keyframe = src.pts - self.start, src.dts - self.start, src.keyframe
        if src.duration:
            pkt.duration = src.duration
        pkt.time_base = self.tb  # the source's: PyAV rescales to the muxer's time base
        pkt.stream = self.ost
        self.out.mux(pkt)

    def close(self) -> Path:
        self.out.close()
        if self.tail is not None:
            end_edit(self.dst, float((self.tail - self.start) * self.tb))
        return self.dst


def end_edit(path: Path, duration_s: float) -> None:
    """Shorten the presentation of a one-track MP4 written by FFmpeg's muxer to ``duration_s``:
    the edit list's media segment (after an empty edit, if the first frame is shown late) and the
    movie and track headers' durations, patched in place (the mov demuxer then discards the frames
    shown after it)."""
    with open(path, "r+b") as f:
        moov = _children(f, 0, path.stat().st_size, "moov")
        if len(moov) != 1:
            raise MediaError("stream copy: no single moov box")
        boxes = _children(f, *moov[0][1:], "mvhd", "trak")
        mvhd = [b for b in boxes if b[0] == "mvhd"]
        traks = [b for b in boxes if b[0] == "trak"]
        if len(mvhd) != 1 or len(traks) != 1:
            raise MediaError("stream copy: expected one movie header and one track")
        f.seek(mvhd[0][1])
        version = f.read(1)[0]
        f.seek(mvhd[0][1] + (20 if version else 12))
        timescale = int.from_bytes(f.read(4), "big")
        duration = int(
            duration_s * timescale
        )  # floor: the first hidden frame starts at or after it
        f.seek(mvhd[0][1] + (24 if version else 16))
        f.write(duration.to_bytes(8 if version else 4, "big"))
        parts = _children(f, *traks[0][1:], "tkhd", "edts")
        tkhd = [b for b in parts if b[0] == "tkhd"]
        edts = [b for b in parts if b[0] == "edts"]
        elst = _children(f, *edts[0][1:], "elst") if len(edts) == 1 else []
        if len(tkhd) != 1 or len(elst) != 1:
            raise MediaError("stream copy: no track header or edit list to end")
        f.seek(tkhd[0][1])
        version = f.read(1)[0]
        f.seek(tkhd[0][1] + (28 if version else 20))
        f.write(duration.to_bytes(8 if version else 4, "big"))
        f.seek(elst[0][1])
        version = f.read(1)[0]
        f.seek(elst[0][1] + 4)
        count, width = int.from_bytes(f.read(4), "big"), 8 if version else 4
        entries = [
            (f.tell() + i * (2 * width + 4), *_edit(f.read(2 * width + 4), width))
            for i in range(count)
        ]
        empty = sum(
            d for _, d, media in entries if media == -1
        )  # a leading delay, shown as nothing
        shown = [at for at, _, media in entries if media != -1]
        if len(shown) != 1 or empty > duration:
            raise MediaError("stream copy: an edit list with more than one media segment")
        f.seek(shown[0])
        f.write((duration - empty).to_bytes(width, "big"))


def _edit(entry: bytes, width: int) -> tuple[int, int]:
    """An edit list entry's segment duration and (signed) media time."""
    return int.from_bytes(entry[:width], "big"), int.from_bytes(
        entry[width : 2 * width], "big", signed=True
    )


def _children(f, start: int, end: int, *names: str) -> list[tuple[str, int, int]]:  # noqa: ANN001 - a binary file
    """The boxes named ``names`` directly inside [start, end): (name, payload start, box end)."""
    found, at = [], start
    while at + 8 <= end:
        f.seek(at)
        head = f.read(16)
        size, name, payload = int.from_bytes(head[:4], "big"), head[4:8].decode("latin-1"), at + 8
        if size == 1:
            size, payload = int.from_bytes(head[8:16], "big"), at + 16
        elif size == 0:
            size = end - at
        if size < payload - at or at + size > end:
            raise MediaError("stream copy: malformed MP4 box")
        if name in names:
            found.append((name, payload, at + size))
        at += size
    return found


def remux(src: str | Path, dst: str | Path) -> Path:
    """Repair what a remux can (broken index, odd container) without re-encoding."""
    try:
        ffmpeg.input(str(src)).output(
            str(dst), c="copy", map="0:v:0", movflags="+faststart"
        ).overwrite_output().run(cmd=ffmpeg_exe(), quiet=True)
    except ffmpeg.Error as exc:
        raise MediaError(f"remux failed: {exc.stderr.decode(errors='replace')[-300:]}") from exc
    return Path(dst)
