"""Embedding videos from stored frames (as synth stores them) vs decoding the mp4 each time."""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_of, store_clip_frames, table, temp_home  # noqa: E402

home = temp_home()
from shared.model import Embedder, EmbedInput, VideoFrames  # noqa: E402
from shared.model.tiny import build_tiny_bundle  # noqa: E402
from shared.storage import get_store  # noqa: E402
from shared.world import render, sample_spec  # noqa: E402

rng = random.Random(1)
bundle = build_tiny_bundle(home / "tiny")
store = get_store()
paths, stored = [], []
for i in range(32):  # 640x360, 6-12 s: what a web clip looks like
    spec = sample_spec(rng, f"f{i}", shots=3, size=(640, 360), shot_s=(2.0, 4.0))
    p = render(spec, home / f"f{i}.mp4")
    paths.append(p)
    stored.append(VideoFrames(store_clip_frames(store, p, f"clips/f{i}/frames")))
e = Embedder(bundle, device="cpu")
e.cache.capacity = 0  # no cache: every call reads again, as a cold corpus would


def from_mp4() -> None:
    e.embed([EmbedInput(video=str(p)) for p in paths])


def from_frames() -> None:
    e.embed([EmbedInput(video=v) for v in stored])


mp4 = best_of(from_mp4, 2)
frames = best_of(from_frames, 2)
table(
    "embedding 32 videos (640x360, 6-12 s), no frame cache",
    [
        ("decode mp4 each time", f"{mp4:.2f} s"),
        ("stored 8 frames (jpg)", f"{frames:.2f} s"),
        ("speed-up", f"{mp4 / frames:.1f}x"),
    ],
)
