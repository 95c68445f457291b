"""V-SynFlow's CPU media stages against a bare `ffmpeg -i X -f null -` decode of the same files
(goal ≤ 2×), and our one-pass scene split against PySceneDetect's ContentDetector on videos with
known cuts (goal ≥ 2× faster with F1 at least as good).

The videos are procedural world videos with ground-truth cuts, re-encoded the way web video is
(x264, B-frames, long GOPs, keyframes only where x264 puts them), cached under bench/out/. Every
method runs once per round on every file, rounds interleaved; each method's time is its best round,
in wall-clock seconds and in CPU seconds (this process and its children: the ffmpeg runs), the
latter being the steadier figure on a machine shared with other work.

    python bench/synth_stages.py [--videos 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import table, temp_home  # noqa: E402

home = temp_home()
from services.synth.media import _clip_candidate, _cut_clips  # noqa: E402
from services.synth.objects import jpeg as _jpeg  # noqa: E402
from shared.config import get_settings  # noqa: E402
from shared.media import ffmpeg_exe  # noqa: E402
from shared.media.analysis import clip_frames, decode_once, detect_cuts, split_spans  # noqa: E402
from shared.media.probe import check_limits, probe  # noqa: E402
from shared.world import render, sample_spec  # noqa: E402

CACHE = Path(__file__).parent / "out" / "synth-videos"
SIZE, FPS = (480, 270), 25
WEB_X264 = [
    "-c:v",
    "libx264",
    "-preset",
    "veryfast",
    "-crf",
    "23",
    "-pix_fmt",
    "yuv420p",
]  # default GOP 250, B-frames


def videos(n: int, seed: int = 5) -> list[tuple[Path, list[float]]]:
    """``n`` web-like videos of 2–5 shots with their true cut times (rendered once, then cached)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    rng, out = random.Random(seed), []
    for i in range(n):
        spec = sample_spec(
            rng, f"s{seed}-{i}", shots=rng.randint(2, 5), shot_s=(1.5, 5.0), fps=FPS, size=SIZE
        )
        web, truth = CACHE / f"{spec['id']}.mp4", CACHE / f"{spec['id']}.json"
        if not (web.exists() and truth.exists() and json.loads(truth.read_text()) == spec["cuts"]):
            with tempfile.TemporaryDirectory() as tmp:
                raw = render(spec, Path(tmp) / "raw.mp4")
                subprocess.run(
                    [ffmpeg_exe(), "-v", "error", "-y", "-i", str(raw), *WEB_X264, str(web)],
                    check=True,
                )
            truth.write_text(json.dumps(spec["cuts"]))
        out.append((web, spec["cuts"]))
    return out


def bare_decode(paths: list[Path]) -> None:
    for p in paths:
        subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(p), "-f", "null", "-"], check=True)


def our_stages(paths: list[Path]) -> int:
    """What the media stage computes for every source, without the database and the object store:
    probe + limits, the one decode pass, the split, the video's 8 frames, every span's filters
    (motion, pHash) and 8 frames + keyframe as JPEG, and the clip files. Returns the clips cut."""
    s, clips = get_settings().synth, 0
    with tempfile.TemporaryDirectory() as tmp:
        for p in paths:
            check_limits(probe(p), s)
            an = decode_once(p, s.analysis_side, s.frame_side)
            cuts = detect_cuts(
                an.small, an.times, s.scene_threshold, pixel_delta=s.scene_pixel_delta
            )
            spans = split_spans(an.duration_s, cuts, s.min_clip_s, s.max_clip_s, s.stride_clip_s)
            for fr in clip_frames(an, 0.0, an.duration_s + 1, s.frames_per_clip)[0]:
                _jpeg(fr)
            moving = [
                c
                for c in (_clip_candidate(str(p), an, a, b, s) for a, b in spans)
                if c["reason"] is None
            ]
            for c in moving:
                for fr in [*c["frames"], c["key_frame"]]:
                    _jpeg(fr)
            clips += len(_cut_clips(p, [(c["start"], c["end"]) for c in moving], Path(tmp), s))
    return clips


def our_split(paths: list[Path], keep_fps: float = 0.0) -> list[list[float]]:
    """Cuts from the analysis pass; ``keep_fps`` 0: the split alone, else also the RGB frames the
    media stage keeps for storage from the same pass."""
    s = get_settings().synth
    return [
        detect_cuts(
            (an := decode_once(p, s.analysis_side, s.frame_side, keep_fps)).small,
            an.times,
            s.scene_threshold,
            pixel_delta=s.scene_pixel_delta,
        )
        for p in paths
    ]


def pyscenedetect_split(paths: list[Path]) -> list[list[float]]:
    from scenedetect import ContentDetector, detect

    return [[scene[0].seconds for scene in detect(str(p), ContentDetector())][1:] for p in paths]


def f1(
    found: list[list[float]], truth: list[list[float]], tol: float = 0.1
) -> tuple[float, int, int, int]:
    """F1 of detected cuts against the true ones (a detection within ``tol`` s of a true cut, each
    true cut matched at most once), and its TP, FP, FN."""
    tp = fp = fn = 0
    for got, want in zip(found, truth, strict=True):
        free = list(want)
        for t in got:
            hit = next((w for w in free if abs(w - t) < tol), None)
            if hit is None:
                fp += 1
            else:
                free.remove(hit)
                tp += 1
        fn += len(free)
    return 2 * tp / max(2 * tp + fp + fn, 1), tp, fp, fn


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished children."""
    return sum(
        r.ru_utime + r.ru_stime
        for r in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    data = videos(args.videos)
    paths, truth = [p for p, _ in data], [c for _, c in data]
    methods: dict[str, Callable[[list[Path]], object]] = {
        "decode": bare_decode,
        "stages": our_stages,
        "ours": our_split,
        "pass": lambda ps: our_split(ps, 8.0),
        "psd": pyscenedetect_split,
    }
    best, cpu = dict.fromkeys(methods, float("inf")), dict.fromkeys(methods, float("inf"))
    results: dict[str, object] = {}
    for _ in range(args.rounds):
        for name, fn in methods.items():
            t0, c0 = time.perf_counter(), cpu_seconds()
            results[name] = fn(paths)
            best[name] = min(best[name], time.perf_counter() - t0)
            cpu[name] = min(cpu[name], cpu_seconds() - c0)
    seconds = sum(decode_once(p, 32, 32).duration_s for p in paths)
    assert results["pass"] == results["ours"], "keeping frames must not change the cuts"
    f_ours, f_psd = f1(results["ours"], truth), f1(results["psd"], truth)

    def both(name: str) -> str:
        return f"{best[name]:6.2f} s wall {cpu[name]:6.2f} s CPU"

    def ratio(a: str, b: str) -> str:
        return f"{best[a] / best[b]:.2f}x wall, {cpu[a] / cpu[b]:.2f}x CPU"

    table(
        f"{len(paths)} videos, {SIZE[0]}x{SIZE[1]} @ {FPS} fps, x264 veryfast (B-frames, GOP 250), "
        f"{seconds:.0f} s of video, {sum(map(len, truth))} cuts; best of {args.rounds} rounds",
        [
            ("bare `ffmpeg -i X -f null -`", both("decode")),
            (
                "media stages (probe, split, filters, frames+JPEG, clips)",
                f"{both('stages')}, {results['stages']} clips",
            ),
            ("  stages / bare decode", f"{ratio('stages', 'decode')}  (goal <= 2x)"),
            (
                "scene split, ours (analysis pass, no stored frames)",
                f"{both('ours')}"
                f", F1 {f_ours[0]:.3f} (TP {f_ours[1]}, FP {f_ours[2]}, FN {f_ours[3]})",
            ),
            ("  the same pass keeping 8 fps RGB frames (as synth runs it)", both("pass")),
            (
                "PySceneDetect ContentDetector",
                f"{both('psd')}, F1 {f_psd[0]:.3f} (TP {f_psd[1]}, FP {f_psd[2]}, FN {f_psd[3]})",
            ),
            ("  PySceneDetect / ours", f"{ratio('psd', 'ours')}  (goal >= 2x with F1 >= theirs)"),
            ("  PySceneDetect / ours with stored frames", ratio("psd", "pass")),
        ],
    )


if __name__ == "__main__":
    main()
