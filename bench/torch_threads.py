"""Two torch processes on one host: torch's default threads in each (one per core: they
oversubscribe the cores) vs each process's share (``shared.threads``: cores / processes, what a
worker pool's children get), on tiny-model training steps, with one process alone as the reference.

Run: ``.venv/bin/python bench/torch_threads.py [--steps N]``; the ratio is the wall time of the pair
with default threads over the pair with shared cores."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import table, temp_home  # noqa: E402

WORKER = """
import sys, time, torch
from shared.config import get_settings
from shared.model import Embedder, EmbedInput
from shared.threads import configure_torch_threads
if sys.argv[2] == "share":
    configure_torch_threads(processes=2)
e = Embedder(sys.argv[1], device="cpu")
e.model.train()
INSTRUCTION = "Find a video according to the given text."
items = [
    EmbedInput(text=f"a red circle moves left {i}", instruction=INSTRUCTION) for i in range(16)
]
opt = torch.optim.SGD([p for p in e.model.parameters() if p.requires_grad], lr=1e-4)
t0 = time.perf_counter()
for _ in range(int(sys.argv[3])):
    z = e.forward(e.collate(items))
    loss = (z @ z.T).logsumexp(-1).mean()
    opt.zero_grad(); loss.backward(); opt.step()
print(f"{time.perf_counter() - t0:.3f} {torch.get_num_threads()}")
"""


def run(n: int, mode: str, bundle: Path, steps: int) -> tuple[float, float, list[str]]:
    """Wall time of ``n`` processes started together, their mean training-loop time, and each
    one's."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    root = str(Path(__file__).parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(bundle), mode, str(steps)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    outs = [p.communicate()[0].split() for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit("a worker failed")
    loops = [float(o[0]) for o in outs]
    return (
        time.perf_counter() - t0,
        sum(loops) / n,
        [f"loop {t:.1f} s on {o[1]} threads" for t, o in zip(loops, outs, strict=True)],
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=150, help="training steps per process")
    a = p.parse_args()
    home = temp_home()
    from shared.model.tiny import build_tiny_bundle

    bundle = build_tiny_bundle(home / "tiny")
    alone, _, alone_runs = run(1, "default", bundle, a.steps)
    default, default_loop, default_runs = run(2, "default", bundle, a.steps)
    shared, shared_loop, shared_runs = run(2, "share", bundle, a.steps)
    table(
        f"two torch processes on {len(os.sched_getaffinity(0))} cores"
        f", {a.steps} tiny-model training steps each",
        [
            ("one process alone, torch's default threads", f"{alone:.1f} s wall ({alone_runs[0]})"),
            (
                "two processes, torch's default threads",
                f"{default:.1f} s wall ({'; '.join(default_runs)})",
            ),
            (
                "two processes, cores shared (shared.threads)",
                f"{shared:.1f} s wall ({'; '.join(shared_runs)})",
            ),
            (
                "speed-up of sharing the cores: wall (model loading included)",
                f"{default / shared:.2f}x",
            ),
            ("speed-up of sharing the cores: training loops", f"{default_loop / shared_loop:.2f}x"),
        ],
    )


if __name__ == "__main__":
    main()
