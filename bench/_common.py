"""Helpers for the benchmarks: a temporary univr home, timing, a result table."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def temp_home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="univr-bench-"))
    os.environ["UNIVR_HOME"] = str(home)
    from shared.config import get_settings

    get_settings.cache_clear()
    return home


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def table(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"\n{title}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def store_clip_frames(
    store, video_path: Path, prefix: str, num: int = 8, side: int = 224
) -> list[str]:  # noqa: ANN001
    """Sample ``num`` frames of a video and store them as JPEGs the way synth does; their keys."""
    import io

    from PIL import Image

    from shared.media.frames import sample_frames

    frames, _ = sample_frames(video_path, num, max_side=side)
    keys = []
    for j, f in enumerate(frames):
        buf = io.BytesIO()
        Image.fromarray(f).save(buf, format="JPEG", quality=90)
        keys.append(f"{prefix}/{j:02d}.jpg")
        store.put_bytes(keys[-1], buf.getvalue())
    return keys
