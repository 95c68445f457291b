"""The demo report is one self-contained page whose charts render in headless Chromium."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from services.demo.report import write_report

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _summary(store: Path) -> dict:
    frame = store / "clips" / "c1" / "frames" / "00.jpg"
    frame.parent.mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (32, 32), (200, 30, 30)).save(frame)
    keys = ["TXT", "CMP", "VIS", "CG", "FG", "LC", "S", "T", "PR", "AVG_A", "AVG_D"]
    return {
        "wall_seconds": 600.0,
        "videos_in": 120,
        "synthesis": {
            "counts": {"done": 110, "rejected": 10},
            "items": [{"reason": "zero-byte file"}],
        },
        "snapshot": {"id": "s1", "counts": {"T2V": 300, "I2V": 100}},
        "abilities": {
            "untrained": {k: 0.05 for k in keys},
            "pyramid": {k: 0.3 for k in keys},
            "uniform": {k: 0.25 for k in keys},
        },
        "datasets": {
            "untrained": {"MSRVTT": 0.05, "CMRB": 0.2},
            "pyramid": {"MSRVTT": 0.4, "CMRB": 0.6},
        },
        "training": {
            "pyramid": {
                "curve": [[i, 3 - i / 50] for i in range(100)],
                "task_probs": [
                    {"step": i, "probs": {"T2V": 0.5 - i / 400, "I2V": 0.5 + i / 400}}
                    for i in range(100)
                ],
            },
            "uniform": {"curve": [[i, 3 - i / 60] for i in range(100)]},
        },
        "best_sampler": "pyramid",
        "index": {"version": "tiny-abc", "points": 300},
        "queries": {
            "results": [
                {
                    "kind": "text",
                    "query": "a red circle",
                    "hits": [
                        {
                            "score": 0.9,
                            "video": "v1",
                            "start_ms": 0,
                            "end_ms": 2000,
                            "thumbnail_key": "clips/c1/frames/00.jpg",
                            "caption": "a red circle moves right",
                        }
                    ],
                }
            ]
        },
        "stage_seconds": {"generate": 10.0, "synthesis": 42.0},
        "stages_reused": ["synthesis"],
        "ablation_seeds": [7, 8],
        "ablation": {
            "AVG_A": {
                "pyramid": {"mean": 0.31, "std": 0.02, "seeds": [0.29, 0.33]},
                "uniform": {"mean": 0.25, "std": 0.01, "seeds": [0.24, 0.26]},
                "p_value": 0.12,
                "significant": False,
            }
        },
    }


def test_report_is_self_contained(tmp_path):
    store = tmp_path / "objects"
    page = write_report(_summary(store), tmp_path / "report.html", store_root=store)
    html = page.read_text()
    assert "<svg" in html and "data:image/jpeg;base64," in html
    assert "http://" not in html.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )  # nothing fetched from the network
    assert "+0.250" in html  # AVG-A gain, best sampler vs untrained
    assert (
        "0.310 ± 0.020" in html and "0.250 ± 0.010" in html and "<td>no</td>" in html
    )  # the ablation


def test_report_captions_thumbnails_and_times_reused_stages(tmp_path):
    store = tmp_path / "objects"
    summary = {**_summary(store), "wall_seconds": 0.4}
    html = write_report(summary, tmp_path / "report.html", store_root=store).read_text()
    assert "<figcaption>a red circle moves right<br>" in html
    assert 'alt="a red circle moves right"' in html and "clips/c1" not in html  # no file path
    assert "reused, first run took 42.0 s" in html and "<td>10.0 s</td>" in html
    assert "wall time 0 s (1 of 2 stages reused, first run took 42 s; all stages 52 s)" in html


def test_a_reused_stage_keeps_its_first_run_time(tmp_path, monkeypatch):
    from services.demo import stages

    clock = iter([100.0, 112.5])
    monkeypatch.setattr(stages.time, "perf_counter", lambda: next(clock))
    first = stages.StageRunner(out=tmp_path, env={})
    first.stage("train", lambda: {"ok": 1})
    assert first.timings == {"train": 12.5} and first.reused == []
    seen: list[tuple] = []
    again = stages.StageRunner(out=tmp_path, env={}, on_done=lambda *a: seen.append(a))
    assert again.stage("train", lambda: {"ok": 2})["ok"] == 1  # not run again
    assert again.timings == {"train": 12.5} and again.reused == ["train"]
    assert seen == [("train", 12.5, True)]


def test_report_thumbnails_cannot_escape_the_store(tmp_path):
    store = tmp_path / "objects"
    summary = _summary(store)
    (tmp_path / "secret.jpg").write_bytes(b"not for the report")
    summary["queries"]["results"][0]["hits"][0]["thumbnail_key"] = "../secret.jpg"
    html = write_report(summary, tmp_path / "report.html", store_root=store).read_text()
    assert "data:image/jpeg" not in html


@pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) or os.environ.get("CI")),
    reason="Debian chromium not installed (make browser)",
)
def test_report_charts_render_in_chromium(tmp_path, screenshot):
    from playwright.sync_api import sync_playwright

    store = tmp_path / "objects"
    page_path = write_report(_summary(store), tmp_path / "report.html", store_root=store)
    shot = screenshot("demo-report.png")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(page_path.as_uri())
        charts = page.locator("svg.chart")
        assert charts.count() >= 4
        for i in range(charts.count()):
            box = charts.nth(i).bounding_box()
            assert box and box["width"] > 100 and box["height"] > 100
        assert page.locator("svg.chart rect[height]").count() > 10  # bars drawn
        assert page.locator("svg.chart polyline").count() >= 3  # loss curves + task probabilities
        assert page.inner_text("figure.hit figcaption").startswith("a red circle moves right")
        natural = page.evaluate("() => Array.from(document.images).map(i => i.naturalWidth)")
        assert natural and all(w > 0 for w in natural)
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shot.stat().st_size > 10_000
