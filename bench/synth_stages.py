"""V-SynFlow's CPU stages against a bare `ffmpeg -i X -f null -` decode of the same files (goal ≤ 2×),
and our one-pass scene split against PySceneDetect's ContentDetector on videos with known cuts
(goal ≥ 2× faster with F1 at least as good)."""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import table, temp_home  # noqa: E402

home = temp_home()
from shared.config import get_settings  # noqa: E402
from shared.media import ffmpeg_exe  # noqa: E402
from shared.media.analysis import (  # noqa: E402
    clip_frames,
    decode_once,
    detect_cuts,
    motion_score,
    phash,
    split_spans,
)
from shared.media.clip import extract_clip  # noqa: E402
from shared.media.probe import probe  # noqa: E402
from shared.world import render, sample_spec  # noqa: E402

rng = random.Random(5)
specs = [sample_spec(rng, f"s{i}", shots=4, shot_s=(3.0, 5.0), fps=25, size=(480, 270)) for i in range(8)]
paths = [render(s, home / f"{s['id']}.mp4") for s in specs]
total_s = sum(s["duration_s"] for s in specs)
s = get_settings().synth


def bare_decode() -> None:
    for p in paths:
        subprocess.run([ffmpeg_exe(), "-v", "error", "-threads", "1", "-i", str(p), "-f", "null", "-"], check=True)


def our_stages(extract: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for p in paths:
            probe(p)
            an = decode_once(p, s.analysis_side, s.frame_side)
            spans = split_spans(an.duration_s, detect_cuts(an.small, an.times, s.scene_threshold), s.min_clip_s, s.max_clip_s, s.stride_clip_s)
            for a, b in spans:
                motion_score(an.small, an.times, a, b)
                frames, _ = clip_frames(an, a, b, 8)
                phash(frames[4])
                if extract:
                    extract_clip(p, Path(tmp) / "c.mp4", a, b)


def f1(found: list[float], truth: list[float], tol: float = 0.3) -> tuple[int, int, int]:
    tp = sum(any(abs(f - t) < tol for f in found) for t in truth)
    return tp, len(found) - sum(any(abs(f - t) < tol for t in truth) for f in found), len(truth) - tp


def score(counts: list[tuple[int, int, int]]) -> float:
    tp, fp, fn = (sum(c[i] for c in counts) for i in range(3))
    return 2 * tp / max(2 * tp + fp + fn, 1)


def ours_split() -> list[list[float]]:
    return [detect_cuts((an := decode_once(p, s.analysis_side, s.frame_side)).small, an.times, s.scene_threshold) for p in paths]


def pyscenedetect_split() -> list[list[float]]:
    from scenedetect import ContentDetector, detect

    return [[scene[0].seconds for scene in detect(str(p), ContentDetector())][1:] for p in paths]


def timed(fn):  # noqa: ANN001, ANN201
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


t_dec, _ = timed(bare_decode)
t_cpu, _ = timed(lambda: our_stages(False))
t_all, _ = timed(lambda: our_stages(True))
t_ours, cuts_ours = timed(ours_split)
t_psd, cuts_psd = timed(pyscenedetect_split)
truth = [sp["cuts"] for sp in specs]
f_ours = score([f1(c, t) for c, t in zip(cuts_ours, truth, strict=True)])
f_psd = score([f1(c, t) for c, t in zip(cuts_psd, truth, strict=True)])
table(f"{len(paths)} videos, 480x270 @ 25 fps, {total_s:.0f} s of video, {sum(map(len, truth))} cuts", [
    ("bare ffmpeg decode", f"{t_dec:.2f} s"),
    ("probe+decode+split+motion+phash+frames", f"{t_cpu:.2f} s  ({t_cpu / t_dec:.2f}x decode, goal <= 2x)"),
    ("... plus clip re-encode (ffmpeg)", f"{t_all:.2f} s  ({t_all / t_dec:.2f}x decode)"),
    ("scene split, ours (one low-res pass)", f"{t_ours:.2f} s, F1 {f_ours:.3f}"),
    ("PySceneDetect ContentDetector", f"{t_psd:.2f} s, F1 {f_psd:.3f}"),
    ("speed-up over PySceneDetect", f"{t_psd / t_ours:.2f}x  (goal >= 2x with F1 >= theirs)"),
])
