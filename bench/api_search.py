"""Search latency through the API for one client, with its breakdown, and under a wrong-secret
flood (issue #19): ``univr api serve`` in its own process on the tiny model and a local Qdrant
collection; one client sends text searches one after another.

Breakdown (means over the measured searches): auth (a cached key check, measured in this process
on the same code; the first check of a key costs one scrypt, printed too), embed and vector search
(the server's own ``univr_search_stage_seconds``), the route as a whole
(``univr_search_latency_seconds``), and HTTP (client-side time minus the route).

Flood: six processes, each from its own loopback address, send searches with wrong secrets as fast
as they can; the valid client measures with the flood paused and on, in interleaved rounds; the
median ratio of the two p50s is the figure (target ≤ 1.5×).
Run: ``.venv/bin/python bench/api_search.py [--searches N] [--points N] [--rounds N]``."""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import table, temp_home  # noqa: E402

QUERIES = [
    "a red circle moving left",
    "a blue square",
    "a green triangle moves up",
    "two shapes cross",
    "a yellow circle grows",
]


def _metric(text: str, name: str, labels: str = "") -> float:
    for line in text.splitlines():
        if line.startswith(name + ("{" + labels + "}" if labels else " ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _stages(base: str) -> dict[str, float]:
    import httpx

    text = httpx.get(f"{base}/metrics", timeout=30).text
    return {
        "embed_sum": _metric(text, "univr_search_stage_seconds_sum", 'stage="embed"'),
        "vector_sum": _metric(text, "univr_search_stage_seconds_sum", 'stage="vector_search"'),
        "route_sum": _metric(text, "univr_search_latency_seconds_sum"),
        "count": _metric(text, "univr_search_latency_seconds_count"),
    }


def _searches(base: str, key: str, n: int) -> list[float]:
    import httpx

    out = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
        for i in range(n):
            t0 = time.perf_counter()
            r = c.post("/v1/search", json={"text": QUERIES[i % len(QUERIES)], "top_k": 10})
            out.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
    return out


def _flood(base: str, wrong: str, address: str, go, stop, counts) -> None:  # noqa: ANN001
    import httpx

    seen: dict[int, int] = {}
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(
        base_url=base, transport=transport, timeout=60, headers={"Authorization": f"Bearer {wrong}"}
    ) as c:
        while not stop.is_set():
            if not go.is_set():
                time.sleep(0.02)
                continue
            code = c.post("/v1/search", json={"text": "guess", "top_k": 10}).status_code
            seen[code] = seen.get(code, 0) + 1
    counts.put(seen)


def _setup(points: int) -> tuple[dict[str, str], str]:
    import numpy as np
    from qdrant_client import models

    home = temp_home()
    from services.api.keys import create_key
    from shared.config import get_settings
    from shared.db import init_db
    from shared.model import Embedder, EmbedInput
    from shared.model.tiny import build_tiny_bundle
    from shared.vectors import get_qdrant

    tiny = build_tiny_bundle(home / "models" / "tiny", seed=0)
    os.environ["UNIVR_MODEL__NAME_OR_PATH"] = str(tiny)
    get_settings.cache_clear()
    dim = len(Embedder.from_settings().embed([EmbedInput(text="probe")])[0])
    client = get_qdrant()
    client.create_collection(
        "bench", vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE)
    )
    rng = np.random.default_rng(0)
    for start in range(0, points, 500):
        n = min(500, points - start)
        client.upsert(
            "bench",
            points=[
                models.PointStruct(
                    id=str(uuid.uuid4()),
                    vector=v.tolist(),
                    payload={
                        "kind": "clip",
                        "clip_id": str(uuid.uuid4()),
                        "start_ms": 0,
                        "end_ms": 1000,
                        "duration_s": 1.0,
                        "caption": "c",
                    },
                )
                for v in rng.normal(size=(n, dim))
            ],
        )
    client.update_collection_aliases(
        change_aliases_operations=[
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(
                    collection_name="bench", alias_name=get_settings().vectors.alias
                )
            )
        ]
    )
    client.close()
    init_db()
    env = {**os.environ, "UNIVR_HOME": str(home), "UNIVR_MODEL__NAME_OR_PATH": str(tiny)}
    return env, create_key("bench", ["search"])


def _auth_cost(key: str) -> tuple[float, float]:
    """(first check: scrypt + database, a cached check) in seconds, on this process's keys."""
    from services.api.keys import check_key, forget_cached

    forget_cached()
    t0 = time.perf_counter()
    assert check_key(key)
    first = time.perf_counter() - t0
    n = 5000
    t0 = time.perf_counter()
    for _ in range(n):
        check_key(key)
    return first, (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--searches", type=int, default=200)
    ap.add_argument("--points", type=int, default=2000)
    ap.add_argument("--flooders", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    load = os.getloadavg()
    env, key = _setup(args.points)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    univr = str(Path(sys.executable).parent / "univr")
    proc = subprocess.Popen(
        [univr, "api", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        for _ in range(600):
            try:
                if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        _searches(base, key, 20)  # warm up: the model loads on the first search
        before = _stages(base)
        idle = _searches(base, key, args.searches)
        after = _stages(base)
        n = after["count"] - before["count"]
        embed = (after["embed_sum"] - before["embed_sum"]) / n
        vector = (after["vector_sum"] - before["vector_sum"]) / n
        route = (after["route_sum"] - before["route_sum"]) / n
        first, cached = _auth_cost(key)

        go, stop, counts = mp.Event(), mp.Event(), mp.Queue()
        wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
        flooders = [
            mp.Process(target=_flood, args=(base, wrong, f"127.0.0.{i + 2}", go, stop, counts))
            for i in range(args.flooders)
        ]
        go.set()
        for p in flooders:
            p.start()
        time.sleep(10.0)  # the flood is on, its first guesses hashed, its addresses blocked
        rounds = []  # (idle p50, flood p50), interleaved: the machine's load drifts
        for _ in range(args.rounds):
            go.clear()
            time.sleep(1.5)  # requests in flight (a blocked one waits api.auth_block_delay_s)
            quiet = statistics.median(_searches(base, key, args.searches))
            go.set()
            time.sleep(1.0)
            rounds.append((quiet, statistics.median(_searches(base, key, args.searches))))
        stop.set()
        codes: dict[int, int] = {}
        for _ in flooders:
            for code, c in counts.get(timeout=60).items():
                codes[code] = codes.get(code, 0) + c
        for p in flooders:
            p.join(timeout=30)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    p50 = statistics.median(idle)
    ratios = [f / q for q, f in rounds]
    ms = 1000.0
    table(
        f"search through the API, one client, {args.searches} searches, {args.points} points "
        f"(load average at start {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}, "
        f"{os.cpu_count()} CPUs)",
        [
            (
                "p50 client time",
                f"{p50 * ms:.1f} ms (p90 {sorted(idle)[int(0.9 * len(idle))] * ms:.1f})",
            ),
            (
                "auth (cached key check)",
                f"{cached * 1e6:.1f} µs (a key's first check: {first * ms:.1f} ms, scrypt)",
            ),
            ("embed (server, mean)", f"{embed * ms:.2f} ms"),
            ("vector search (server, mean)", f"{vector * ms:.2f} ms"),
            ("route (server, mean)", f"{route * ms:.2f} ms"),
            (
                "HTTP + framework (client mean - route)",
                f"{(statistics.mean(idle) - route) * ms:.2f} ms",
            ),
            (
                f"p50 without / with a {args.flooders}-client wrong-secret flood, per round",
                ", ".join(f"{q * ms:.1f} / {f * ms:.1f} ms" for q, f in rounds),
            ),
            (
                "flood / no-flood p50, median of rounds",
                f"{statistics.median(ratios):.2f}x "
                f"(rounds {', '.join(f'{r:.2f}' for r in ratios)}; "
                "target <= 1.5x)",
            ),
            ("flood answers", ", ".join(f"{k}: {v}" for k, v in sorted(codes.items()))),
        ],
    )


if __name__ == "__main__":
    main()
