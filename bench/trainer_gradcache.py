"""Gradient Cache: peak memory and time of one training step at a large batch, off vs on.

Each variant runs in its own process (tiny bundle, LoRA on every block with dropout 0.1, text
queries → 8-frame 224×224 videos with one hard negative each), so peak RSS is the variant's alone.
A step's peak is the process's high-water mark during the step (reset just before it through
/proc/self/clear_refs) minus its resident size before; the whole process's peak comes from
getrusage(RUSAGE_CHILDREN). Expected: the step's activation memory bounded by a chunk, not the
batch (the batch's collated pixels remain), for one extra forward: (2F + B) / (F + B) of the time,
about 1.5× here, where LoRA's frozen weights make the backward B about as cheap as the forward F."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import table, temp_home  # noqa: E402

PAIRS, CHUNK, SIDE, STEPS = 48, 8, 224, 2


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def child(model: str, grad_cache: bool, pairs: int, chunk: int) -> None:
    """One variant: set up, then time ``STEPS`` steps; the first one's memory is measured."""
    import numpy as np
    import torch

    from services.trainer.loop import PRESETS, _lora, forward_backward
    from shared.config import TrainSettings
    from shared.model import Embedder, EmbedInput

    ts = TrainSettings(
        **{
            **PRESETS["tiny"],
            "lora_dropout": 0.1,
            "grad_cache": grad_cache,
            "grad_cache_chunk": chunk,
        }
    )
    torch.manual_seed(0)
    e = Embedder(model, device="cpu")
    _lora(e, ts)
    e.model.train()
    params = [p for p in e.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=ts.lr)
    rng = np.random.default_rng(0)
    words = "a red green blue circle square moves left right up down then turns".split()
    q = [
        EmbedInput(
            text=" ".join(rng.choice(words, 8)),
            instruction="Find a video according to the given text.",
        )
        for _ in range(pairs)
    ]
    videos = [
        EmbedInput(video=rng.integers(0, 255, (8, SIDE, SIDE, 3), dtype=np.uint8))
        for _ in range(2 * pairs)
    ]
    y, h = videos[:pairs], videos[pairs:]
    groups, hgroups = list(range(pairs)), [pairs + i for i in range(pairs)]
    times, step_peak = [], 0
    for step in range(STEPS):
        if step == 0:
            Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            before = _status_kib("VmRSS")
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        out = forward_backward(e, q, y, h, groups, hgroups, ts)
        torch.nn.utils.clip_grad_norm_(params, ts.grad_clip)
        opt.step()
        times.append(time.perf_counter() - t0)
        if step == 0:
            step_peak = _status_kib("VmHWM") - before
    print(
        json.dumps(
            {
                "step_peak_kib": step_peak,
                "rss_before_kib": before,
                "seconds": min(times),
                "loss": float(out["loss"]),
            }
        )
    )


def run(model: str, grad_cache: bool, pairs: int, chunk: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env.setdefault("OMP_NUM_THREADS", "1")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            "--model",
            model,
            "--pairs",
            str(pairs),
            "--chunk",
            str(chunk),
            *(["--grad-cache"] if grad_cache else []),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    # ru_maxrss of children is the largest of any child so far: meaningful when it grows
    res["process_peak_kib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    res["process_peak_is_own"] = res["process_peak_kib"] > before
    return res


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--model", default="")
    parser.add_argument("--grad-cache", action="store_true")
    parser.add_argument("--pairs", type=int, default=PAIRS)
    parser.add_argument("--chunk", type=int, default=CHUNK)
    args = parser.parse_args()
    if args.child:
        child(args.model, args.grad_cache, args.pairs, args.chunk)
        return
    home = temp_home()
    from shared.model.tiny import build_tiny_bundle

    model = str(build_tiny_bundle(home / "tiny"))
    # the smaller process first, so that RUSAGE_CHILDREN's maximum after each run is that run's own
    on = run(model, True, args.pairs, args.chunk)
    off = run(model, False, args.pairs, args.chunk)

    def mib(kib: float) -> str:
        return f"{kib / 1024:.0f} MiB"

    def process(res: dict) -> str:
        return (
            f"  (process peak {mib(res['process_peak_kib'])})" if res["process_peak_is_own"] else ""
        )

    # the collated pixel inputs of the whole batch, which the second pass reuses (8 frames → 4
    # temporal patches of (SIDE/14)² patches of 3·2·14·14 float32 each)
    inputs_kib = 2 * args.pairs * 4 * (SIDE // 14) ** 2 * 1176 * 4 / 1024

    n_videos = 2 * args.pairs
    table(
        f"one training step: {args.pairs} text queries, {n_videos} videos "
        f"(8 × {SIDE}² frames, half hard "
        f"negatives), tiny model, LoRA all blocks, dropout 0.1, CPU",
        [
            ("step peak memory, grad cache off", f"{mib(off['step_peak_kib'])}{process(off)}"),
            (
                f"step peak memory, grad cache on (chunk {args.chunk})",
                f"{mib(on['step_peak_kib'])}{process(on)}; "
                f"of it ~{mib(inputs_kib)} is the batch's collated pixels",
            ),
            (
                "step memory, on / off",
                f"{on['step_peak_kib'] / off['step_peak_kib']:.2f}x  (goal: well below 1)",
            ),
            ("step time, grad cache off", f"{off['seconds']:.2f} s"),
            ("step time, grad cache on", f"{on['seconds']:.2f} s"),
            (
                "step time, on / off",
                f"{on['seconds'] / off['seconds']:.2f}x  (one extra forward: ~1.5x expected)",
            ),
            ("loss off / on (dropout masks differ)", f"{off['loss']:.4f} / {on['loss']:.4f}"),
        ],
    )


if __name__ == "__main__":
    main()
