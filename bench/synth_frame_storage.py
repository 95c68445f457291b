"""What storing training frames at the model's video budget costs (issue 16, item 3): bytes of the
JPEG frames synth stores per clip (8 frames + the keyframe, as `services/synth/stages.py` encodes
them) with `synth.frame_side` 224 (the old default) against 0 (the size the model's preprocessing
gives a frame, never enlarged), and the visual tokens the embedder then feeds per clip, beside the
tokens the same clip gets when evaluated from its mp4 (the reference's sizing: SPEC §6.3).

The clips are procedural world videos rendered at web sizes (noise included, 2 s at 8 fps).

    python bench/synth_frame_storage.py
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import table, temp_home  # noqa: E402

home = temp_home()
from services.synth.stages import _jpeg  # noqa: E402
from shared.config import get_settings  # noqa: E402
from shared.media.analysis import clip_frames, decode_once  # noqa: E402
from shared.model.visual import VideoBudget  # noqa: E402
from shared.world import render, sample_spec  # noqa: E402

SIZES = [(320, 240), (640, 360), (1280, 720), (1920, 1080)]


def main() -> None:
    ms = get_settings().model
    budget = VideoBudget(ms.video_min_pixels, ms.video_max_pixels, ms.video_total_pixels)
    rows = []
    for w, h in SIZES:
        spec = sample_spec(random.Random(w), f"s{w}", shots=1, size=(w, h), fps=8)
        spec["duration_s"] = 2.0
        path = render(spec, home / f"{w}x{h}.mp4")
        source_tokens = budget.tokens(h, w, ms.num_frames)
        per_side = {}
        for side in (224, 0):
            an = decode_once(path, 32, side)
            frames, _ = clip_frames(an, 0.0, an.duration_s, ms.num_frames)
            size = sum(len(_jpeg(f)) for f in frames) + len(_jpeg(frames[len(frames) // 2]))
            fh, fw = frames[0].shape[:2]
            per_side[side] = (size, fw, fh, budget.tokens(fh, fw, ms.num_frames))
        (old, ow, oh, ot), (new, nw, nh, nt) = per_side[224], per_side[0]
        rows.append(
            (
                f"{w}x{h}",
                f"224: {ow}x{oh} {old / 1024:.0f} KiB {ot} tok | 0: {nw}x{nh} "
                f"{new / 1024:.0f} KiB {nt} tok | mp4 {source_tokens} tok | x{new / old:.2f} bytes",
            )
        )
    table(
        "stored frames per clip (8 + keyframe, JPEG q90): frame_side 224 vs 0 (model budget)", rows
    )


if __name__ == "__main__":
    main()
