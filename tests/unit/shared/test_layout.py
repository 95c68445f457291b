"""The object-key layout lives in ``shared/layout.py`` only: no other module of shared/ or
services/ spells a synthesis key, a snapshot path or the whole-video ref in a string literal; and
a hit's thumbnail is the same image whichever service names it."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

from shared import layout

ROOT = Path(__file__).resolve().parents[3]
KEY_LITERAL = re.compile(r"""^[rbfu]*["']{1,3}(clips/|videos/|snapshots/|video:)""", re.IGNORECASE)
PENDING: tuple[str, ...] = ()  # files allowed to keep key literals (none)


def _literals(path: Path) -> list[tuple[int, str]]:
    """String literals (f-strings too, tokenized either way Python versions do) that start a key."""
    out, prev = [], None
    fstring_start = getattr(tokenize, "FSTRING_START", None)  # Python 3.12+: f-strings in parts
    for t in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        text = t.string if t.type == tokenize.STRING else None
        if prev is not None and prev.type == fstring_start and t.type == tokenize.FSTRING_MIDDLE:
            text = prev.string + t.string
        if text and KEY_LITERAL.match(text):
            out.append((t.start[0], text))
        prev = t
    return out


def test_no_key_literal_outside_the_layout_module():
    found = []
    for path in sorted([*(ROOT / "shared").rglob("*.py"), *(ROOT / "services").rglob("*.py")]):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "shared/layout.py" or rel.startswith(PENDING) or "/migrations/" in rel:
            continue
        found += [f"{rel}:{line}: {text}" for line, text in _literals(path)]
    assert not found, "object keys typed outside shared/layout.py:\n" + "\n".join(found)


def test_keys_and_refs():
    assert layout.frame_keys("c", 2) == ["clips/c/frames/00.jpg", "clips/c/frames/01.jpg"]
    assert (
        layout.keyframe_key("c") == "clips/c/key/00.jpg"
        and layout.clip_key("c") == "clips/c/clip.mp4"
    )
    assert layout.video_frame_keys("v", 1) == ["videos/v/frames/00.jpg"]
    assert (
        layout.video_ref("v") == "video:v"
        and layout.is_video_ref("video:v")
        and not layout.is_video_ref("v")
    )
    assert layout.ref_owner("video:v") == "v" and layout.ref_owner("c") == "c"
    assert (
        layout.owner_of("clips/c/frames/00.jpg") == "c" and layout.owner_of("snapshots/s/x") is None
    )
    assert layout.is_manifest_key(layout.manifest_key("s")) and layout.shard_key("s", 3).startswith(
        layout.shards_prefix("s")
    )


def test_a_video_thumbnail_is_its_middle_frame_for_any_frame_count():
    for n in (1, 4, 8, 16):
        assert layout.thumbnail_key("video", "v", n) == layout.video_frame_keys("v", n)[n // 2]
        assert layout.thumbnail_key("videos", "v", n) == layout.thumbnail_key("video", "v", n)
    assert (
        layout.thumbnail_key("video", "v", 8) == "videos/v/frames/04.jpg"
    )  # the API's route today
    assert (
        layout.thumbnail_key("clips", "c", 8)
        == layout.thumbnail_key("clip", "c", 8)
        == "clips/c/key/00.jpg"
    )
