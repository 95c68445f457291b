"""Length-bucketed batching vs arrival order on a mixed-length workload (goal: ≥ 1.5×
throughput)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_of, table, temp_home  # noqa: E402

home = temp_home()
from shared.model import Embedder, EmbedInput  # noqa: E402
from shared.model.tiny import build_tiny_bundle  # noqa: E402
from shared.world import describe, render, sample_spec  # noqa: E402

rng = random.Random(0)
bundle = build_tiny_bundle(home / "tiny")
videos = [
    render(sample_spec(rng, f"b{i}", shots=2, size=(112, 112)), home / f"b{i}.mp4")
    for i in range(24)
]
items = []
for i in range(192):  # short queries, long paragraphs and videos, interleaved as they would arrive
    kind = i % 4
    if kind == 0:
        items.append(
            EmbedInput(text="a red circle", instruction="Find a video according to the given text.")
        )
    elif kind == 1:
        spec = sample_spec(rng, f"t{i}", shots=6)
        items.append(
            EmbedInput(
                text=describe(spec, "long") * 3,
                instruction="Find a video according to the given text.",
            )
        )
    elif kind == 2:
        items.append(EmbedInput(video=str(videos[i % len(videos)])))
    else:
        items.append(EmbedInput(text="what happens next", video=str(videos[(i * 7) % len(videos)])))
e = Embedder(bundle, device="cpu")
e.embed(items[:16])  # warm-up, fills the frame cache for both variants alike
e.embed(items, bucket=False)
arrival = best_of(lambda: e.embed(items, batch_size=16, bucket=False))
bucketed = best_of(lambda: e.embed(items, batch_size=16, bucket=True))
table(
    "embedding 192 mixed-length inputs, batch 16 (tiny model, CPU)",
    [
        ("arrival order", f"{arrival:.2f} s  ({len(items) / arrival:.1f} items/s)"),
        ("length-bucketed", f"{bucketed:.2f} s  ({len(items) / bucketed:.1f} items/s)"),
        ("speed-up", f"{arrival / bucketed:.2f}x  (goal >= 1.5x)"),
    ],
)
