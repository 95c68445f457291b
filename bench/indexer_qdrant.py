"""Qdrant: batch upserts vs one-point upserts (goal ≥ 20×) in the embedded default's on-disk local
mode (every call persists, as every call to a server is a round trip), and search latency
percentiles at the corpus size the demo builds."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from qdrant_client import QdrantClient, models

sys.path.insert(0, str(Path(__file__).parent))
from _common import table  # noqa: E402

rng = np.random.default_rng(0)
n, d = 1000, 128
vecs = rng.normal(size=(n, d)).astype(np.float32)
import tempfile  # noqa: E402

client = QdrantClient(path=tempfile.mkdtemp(prefix="univr-bench-qdrant-"))


def fresh(name: str) -> None:
    client.create_collection(name, vectors_config=models.VectorParams(size=d, distance=models.Distance.COSINE))


fresh("single")
t0 = time.perf_counter()
for i in range(n):
    client.upsert("single", points=[models.PointStruct(id=i, vector=vecs[i].tolist(), payload={"i": i})])
t_single = time.perf_counter() - t0
fresh("batch")
t0 = time.perf_counter()
for s in range(0, n, 256):
    client.upsert("batch", points=models.Batch(ids=list(range(s, min(s + 256, n))), vectors=vecs[s : s + 256].tolist(),
                                               payloads=[{"i": i} for i in range(s, min(s + 256, n))]))
t_batch = time.perf_counter() - t0
demo_points = 700  # clips + videos of the default demo
fresh("demo")
client.upsert("demo", points=models.Batch(ids=list(range(demo_points)), vectors=vecs[:demo_points].tolist()))
lat = []
for i in range(300):
    t0 = time.perf_counter()
    client.query_points("demo", query=vecs[i % n].tolist(), limit=10)
    lat.append((time.perf_counter() - t0) * 1000)
p50, p95, p99 = np.percentile(lat, [50, 95, 99])
table(f"Qdrant local mode (on disk), {n} points x {d} dims", [
    ("one-point upserts", f"{t_single:.2f} s"), ("batched upserts (256)", f"{t_batch:.3f} s"),
    ("speed-up", f"{t_single / t_batch:.0f}x  (goal >= 20x)"),
    (f"search latency, {demo_points} points", f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms"),
])
client.close()
