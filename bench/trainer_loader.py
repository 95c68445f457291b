"""The trainer's data path: samples/s from stored frames vs decoding the mp4 per sample (goal ≥
10×), and against the model's step rate."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import store_clip_frames, table, temp_home  # noqa: E402

home = temp_home()
import numpy as np  # noqa: E402
import torch  # noqa: E402

from shared.media.frames import load_frames_from_store, sample_frames  # noqa: E402
from shared.model import Embedder, EmbedInput, VideoFrames  # noqa: E402
from shared.model.tiny import build_tiny_bundle  # noqa: E402
from shared.storage import get_store  # noqa: E402
from shared.world import render, sample_spec  # noqa: E402

rng = random.Random(2)
store = get_store()
paths, keys = [], []
for i in range(24):
    p = render(
        sample_spec(rng, f"l{i}", shots=2, fps=25, size=(480, 270), shot_s=(3.0, 5.0)),
        home / f"l{i}.mp4",
    )
    paths.append(p)
    keys.append(store_clip_frames(store, p, f"clips/l{i}/frames"))


def rate(fn, n: int) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - t0)


mp4_rate = rate(lambda i: sample_frames(paths[i % len(paths)], 8, max_side=224), 48)
frames_rate = rate(lambda i: load_frames_from_store(keys[i % len(keys)]), 480)
e = Embedder(build_tiny_bundle(home / "tiny"), device="cpu")
batch = [EmbedInput(video=VideoFrames(keys[i])) for i in range(16)]
texts = [
    EmbedInput(
        text="a red circle moving left", instruction="Find a video according to the given text."
    )
] * 16
e.model.train()
opt = torch.optim.SGD([p for p in e.model.parameters()], lr=1e-6)
t0 = time.perf_counter()
for _ in range(5):
    loss = (e.forward(e.collate(texts)) * e.forward(e.collate(batch))).sum()
    opt.zero_grad()
    loss.backward()
    opt.step()
step_rate = 5 * 16 / (time.perf_counter() - t0)
table(
    "training samples (one video of 8 frames each), 480x270 @ 25 fps sources",
    [
        ("decode mp4 per sample", f"{mp4_rate:.1f} samples/s"),
        ("stored frames (jpg, object store)", f"{frames_rate:.1f} samples/s"),
        ("speed-up", f"{frames_rate / mp4_rate:.1f}x  (goal >= 10x)"),
        (
            "model step rate (tiny, CPU, batch 16)",
            f"{step_rate:.1f} samples/s -> loader headroom {frames_rate / step_rate:.1f}x",
        ),
    ],
)
np.random.seed(0)
