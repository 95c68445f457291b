"""`univr demo` end to end at a small size: every stage runs for real, the summary has the numbers
the README promises, the trained model beats the untrained one, and a second run reuses the stages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

KEYS = {"TXT", "CMP", "VIS", "CG", "FG", "LC", "S", "T", "PR", "AVG_A", "AVG_D"}


def _demo(out, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIVR_")}
    env["HF_HUB_OFFLINE"] = "1"
    return subprocess.run([sys.executable, "-c", "from shared.cli import main; main()", "demo", "--out", str(out),
                           "--videos", "40", "--long", "1", "--steps", "120", "--uvrb-size", "12", *extra],
                          env=env, capture_output=True, text=True, timeout=1500)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_demo_runs_end_to_end_and_reuses_its_stages(tmp_path):
    out = tmp_path / "demo"
    first = _demo(out)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["wall_seconds"] > 0
    assert set(summary["abilities"]) == {"untrained", "pyramid", "uniform"}
    for scores in summary["abilities"].values():
        assert set(scores) == KEYS
    best = summary["best_sampler"]
    assert summary["abilities"][best]["AVG_A"] > summary["abilities"]["untrained"]["AVG_A"]
    assert set(summary["ablation"]) == KEYS  # pyramid vs uniform over the default 2 seeds, per ability
    for row in summary["ablation"].values():
        for sampler in ("pyramid", "uniform"):
            assert set(row[sampler]) == {"mean", "std", "seeds"} and len(row[sampler]["seeds"]) == 2
        assert isinstance(row["significant"], bool)
    assert set(summary["snapshot"]["counts"]) == {"T2T", "T2I", "T2V", "TI2V", "TV2V", "I2V", "V2V"}
    assert summary["index"]["promotion"]["promoted"] and summary["index"]["points"] > 0
    assert all(q["hits"] for q in summary["queries"]["results"])
    html = (out / "report.html").read_text()
    assert html.count("<svg") >= 4 and "data:image/jpeg;base64," in html
    assert "UVRB-mini abilities" in first.stdout
    t0 = time.perf_counter()
    second = _demo(out)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.count("(reused)") >= 10 and time.perf_counter() - t0 < 60
