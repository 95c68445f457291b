"""The trainer's data memory (issue #13 item 3): peak RSS of building the run's data from a
Parquet snapshot (the streaming pass, the batcher, BATCHES batches, the probe pairs and the
held-out check's pass), for a small and a big snapshot, each measured in a fresh subprocess; the
former all-in-memory load (``load_snapshot``) is measured alongside. Each child first builds the
data of a small snapshot (imports, codecs and validators warm), gives freed memory back and resets
its peak; ``rss`` is then the peak RSS while building the measured snapshot's data, as
bench/synth_scale.py measures its snapshot's, and ``+`` its growth over the RSS before (the data's
own memory: the compact index grows with the pairs; the rest is bounded by the row-group cache
and the allocators, whose reuse makes small growths noisy, ± 20 MiB).
Goal: rss(big)/rss(small) well under the pair ratio (the issue's target ≤ 1.5).

    python bench/trainer_data_memory.py [--small 10000] [--big 100000] [--batches 200]"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import table, temp_home  # noqa: E402

ROWS_PER_SHARD = 5_000  # both snapshots span several shards...
CACHE = 4  # ...and more row groups (1000 rows) than the cache holds (train.shard_cache)
WARM = "warm"  # a small snapshot each child reads first
BATCH = 32


def _hwm_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _reset_hwm() -> None:
    """Give freed memory back (glibc, Arrow's pool), then reset the peak to the current RSS."""
    import ctypes

    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:  # Linux: "5" resets the peak RSS to the current RSS
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def child(sid: str, mode: str, batches: int) -> None:
    """Build the data the way ``mode`` does and print the peak growth (KiB) as JSON."""
    import gc

    import pyarrow as pa
    import pyarrow.parquet as pq

    from services.trainer.data import PairBatcher, heldout, load_snapshot
    from services.trainer.heldout import _one_query_per_clip
    from services.trainer.probe import probe_pairs
    from services.trainer.pyramid import TaskSampler
    from services.trainer.setup import load_run_data

    del pa, pq  # imported before the peak is reset

    def build(snapshot: str, n_batches: int) -> tuple[Any, float, float]:
        t0 = time.perf_counter()
        if mode == "lazy":
            data = load_run_data(snapshot, 0.1, cache_groups=CACHE)
            train, held = data.train_pairs, data.eval_pairs
        else:
            pairs = load_snapshot(snapshot).pairs
            train = [p for p in pairs if not heldout(p["video_id"], 0.1)]
            held = [p for p in pairs if heldout(p["video_id"], 0.1)]
        batcher = PairBatcher(train, seed=0)
        sampler = TaskSampler(batcher.tasks, mode="uniform", seed=0)
        t1 = time.perf_counter()
        for _ in range(n_batches):
            batcher.batch(sampler.draw(), BATCH)
        t2 = time.perf_counter()
        probe_pairs(batcher, 32)
        _one_query_per_clip(held)
        return batcher, t1 - t0, (t2 - t1) * 1000 / max(n_batches, 1)

    build(WARM, 4)  # first-use costs (imports, codecs, validators) are not the data's
    gc.collect()
    _reset_hwm()
    base = _hwm_kib()
    batcher, load_s, batch_ms = build(sid, batches)
    index = batcher.pairs.compact.nbytes() if mode == "lazy" else 0
    peak = _hwm_kib()
    out = {"kib": peak - base, "peak": peak, "index": index, "load_s": load_s, "batch_ms": batch_ms}
    print(json.dumps(out))


def measure(sid: str, mode: str, batches: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", sid, mode, str(batches)],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--big", type=int, default=100_000)
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--modes", default="lazy,eager")
    ap.add_argument("--child", nargs=3)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    temp_home()
    from shared.storage import get_store
    from shared.world.shards import synthetic_pairs, write_shards

    write_shards(get_store(), WARM, synthetic_pairs(5000, seed=2), ROWS_PER_SHARD)
    sizes = {"small": args.small, "big": args.big}
    modes = args.modes.split(",")
    res: dict[str, dict[str, dict]] = {}
    for name, n in sizes.items():
        t0 = time.perf_counter()
        write_shards(get_store(), f"mem{n}", synthetic_pairs(n, seed=1), ROWS_PER_SHARD)
        print(f"wrote {n} pairs in {time.perf_counter() - t0:.1f} s", flush=True)
        res[name] = {m: measure(f"mem{n}", m, args.batches) for m in modes}
    rows = []
    for name, n in sizes.items():
        for m in modes:
            r = res[name][m]
            rows.append(
                (
                    f"{m} {n:.0e} pairs",
                    f"rss {r['peak'] / 1024:6.0f} MiB (+{r['kib'] / 1024:6.1f}, "
                    f"{r['kib'] * 1024 / n:5.0f} B/pair)"
                    + (f"  (index {r['index'] / n:.0f} B/pair)" if m == "lazy" else "")
                    + f"  load {r['load_s']:.1f} s, {r['batch_ms']:.1f} ms/batch",
                )
            )
    title = f"{args.batches} batches of {BATCH}, shards of {ROWS_PER_SHARD}, cache {CACHE} groups"
    table(f"trainer data: {title}", rows)
    ratio = {m: res["big"][m]["peak"] / res["small"][m]["peak"] for m in modes}
    small, big = f"{args.small:.0e}".replace("+0", ""), f"{args.big:.0e}".replace("+0", "")
    print(f"pairs ratio {args.big / args.small:.0f}")
    if "eager" in ratio:
        print(f"all pairs in memory (before): rss({big})/rss({small})={ratio['eager']:.2f}")
    print(f"trainer data: rss({big})/rss({small})={ratio['lazy']:.2f}")


if __name__ == "__main__":
    main()
