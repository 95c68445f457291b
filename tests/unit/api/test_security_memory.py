"""Four concurrent 12000×12000 PNG uploads (~400 KB each) keep the API process's peak RSS
growth under 1 GiB (issue #19, finding 2): measured on a real ``univr api serve`` process from
its kernel peak (VmHWM, reset after warm-up)."""

from __future__ import annotations

import base64
import io
import os
import threading
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.unit.api.conftest import served_api

GIB = 1024**3


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _png(side: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (side, side), (200, 30, 30)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_concurrent_image_bombs_keep_peak_rss_growth_under_1_gib(univr_home, tmp_path):
    env = {**os.environ, "UNIVR_API__REQUIRE_KEYS": "false", "UNIVR_HOME": str(univr_home)}
    with served_api(env, tmp_path / "api.log") as (proc, base):
        small = httpx.post(f"{base}/v1/search", json={"image_b64": _png(64)}, timeout=120)
        assert small.status_code < 500  # warm: PIL and the route are loaded
        Path(f"/proc/{proc.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
        before = _kib(proc.pid, "VmHWM") * 1024
        bomb = _png(12000)
        assert len(bomb) < 1024**2
        codes: list[int] = []

        def send() -> None:
            codes.append(
                httpx.post(f"{base}/v1/search", json={"image_b64": bomb}, timeout=300).status_code
            )

        threads = [threading.Thread(target=send) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        growth = _kib(proc.pid, "VmHWM") * 1024 - before
        print(
            f"\npeak RSS growth for 4 concurrent 12000x12000 PNGs: {growth / 2**20:.0f} MiB; "
            f"answers {sorted(codes)}"
        )
        assert len(codes) == 4 and all(400 <= c < 500 for c in codes)
        assert growth <= GIB
