"""Generating a raw corpus: rendered videos, ground-truth sidecars, noisy captions, a manifest.

``manifest.jsonl`` has one ``{"path", "caption", "sidecar", "failure"}`` row per video (paths
relative to the manifest's folder), the shape of WebVid / InternVid manifests plus ground truth.
"""

from __future__ import annotations

import json
import os
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.world.describe import describe, noisy_caption
from shared.world.render import render
from shared.world.spec import DEFAULT_FPS, DEFAULT_SIZE, sample_spec


@dataclass(frozen=True)
class WorldVideo:
    id: str
    path: Path
    sidecar: dict[str, Any]
    caption: str
    failure: str | None


def plan(
    n_videos: int,
    seed: int,
    *,
    long_videos: int = 0,
    failures: bool = False,
    prefix: str = "w",
    fps: int = DEFAULT_FPS,
    size: tuple[int, int] = DEFAULT_SIZE,
) -> list[dict[str, Any]]:
    """The sidecars of a corpus (no rendering): deterministic for a seed."""
    rng = random.Random(seed)
    specs: list[dict[str, Any]] = []
    for i in range(n_videos):
        vid = f"{prefix}{seed}-{i:05d}"
        if i < long_videos:
            spec = sample_spec(
                rng, vid, shots=rng.randint(6, 9), shot_s=(3.0, 5.0), fps=fps, size=size
            )
        else:
            spec = sample_spec(rng, vid, fps=fps, size=size)
        spec["caption"] = describe(spec, "rich", rng)
        spec["raw_caption"], spec["noise"] = noisy_caption(spec, rng)
        specs.append(spec)
    if failures and specs:
        specs += _failure_specs(rng, specs, seed, prefix, fps, size)
    return specs


def _failure_specs(
    rng: random.Random,
    base: list[dict[str, Any]],
    seed: int,
    prefix: str,
    fps: int,
    size: tuple[int, int],
) -> list[dict[str, Any]]:
    out = []
    n = max(1, len(base) // 20)
    for k in range(n):
        static = sample_spec(
            rng, f"{prefix}{seed}-static{k}", static=True, shots=1, fps=fps, size=size
        )
        static["caption"] = describe(static, "rich", rng)
        static["raw_caption"], static["noise"] = describe(static, "concise", rng), "loose"
        out.append(static)
        src = base[rng.randrange(len(base))]
        dup = json.loads(json.dumps(src))
        dup.update(
            id=f"{prefix}{seed}-dup{k}",
            failure="near_duplicate",
            duplicate_of=src["id"],
            noise_seed=rng.randrange(2**31),
        )
        out.append(dup)
        a, b = rng.sample(base, 2) if len(base) > 1 else (base[0], base[0])
        mis = json.loads(json.dumps(a))
        mis.update(
            id=f"{prefix}{seed}-mismatch{k}",
            failure="mismatched_caption",
            noise_seed=rng.randrange(2**31),
        )
        mis["shots"][0]["background"] = "gray"  # not a pixel copy of `a`
        mis["raw_caption"], mis["noise"] = noisy_caption(mis, rng, other=b)
        out.append(mis)
        for kind in ("truncated", "garbage", "empty"):
            broken = json.loads(json.dumps(rng.choice(base)))
            broken.update(id=f"{prefix}{seed}-{kind}{k}", failure=kind)
            out.append(broken)
    return out


def _write(spec: dict[str, Any], out_dir: str) -> dict[str, Any]:
    out = Path(out_dir)
    path = out / f"{spec['id']}.mp4"
    failure = spec.get("failure")
    if failure == "empty":
        path.write_bytes(b"")
    elif failure == "garbage":
        path.write_bytes(random.Random(spec["seed"]).randbytes(30_000))
    else:
        render(spec, path, noise_seed=spec.get("noise_seed"))
        if failure == "truncated":
            data = path.read_bytes()
            path.write_bytes(data[: len(data) * 2 // 5])
    (out / f"{spec['id']}.json").write_text(json.dumps(spec, indent=1))
    return {
        "path": path.name,
        "caption": spec.get("raw_caption") or "",
        "sidecar": f"{spec['id']}.json",
        "failure": failure,
    }


def generate(
    out_dir: str | Path,
    n_videos: int,
    seed: int,
    *,
    long_videos: int = 0,
    failures: bool = False,
    workers: int | None = None,
    prefix: str = "w",
    fps: int = DEFAULT_FPS,
    size: tuple[int, int] = DEFAULT_SIZE,
) -> list[WorldVideo]:
    """Render a corpus into ``out_dir`` with its sidecars and ``manifest.jsonl``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    specs = plan(
        n_videos,
        seed,
        long_videos=long_videos,
        failures=failures,
        prefix=prefix,
        fps=fps,
        size=size,
    )
    workers = workers or min(os.cpu_count() or 1, 4)
    if workers > 1 and len(specs) > 4:
        with ProcessPoolExecutor(workers) as pool:
            rows = list(pool.map(_write, specs, [str(out)] * len(specs), chunksize=4))
    else:
        rows = [_write(s, str(out)) for s in specs]
    with open(out / "manifest.jsonl", "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    return [
        WorldVideo(s["id"], out / r["path"], s, r["caption"], r["failure"])
        for s, r in zip(specs, rows, strict=True)
    ]
