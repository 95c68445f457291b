"""The dashboard in headless Chromium (Debian's, driven by Playwright): it loads, shows the live
index and training/eval panels, runs a search and shows results with thumbnails."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time

import pytest

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) or os.environ.get("CI")),
    reason="Debian chromium not installed (make tools)",
)
def test_dashboard_search_in_chromium(api, screenshot):
    import uvicorn
    from playwright.sync_api import sync_playwright

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(api["app"], host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    shot = screenshot("dashboard.png")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            errors: list[str] = []
            urls: list[str] = []
            page.on("request", lambda r: urls.append(r.url))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"http://127.0.0.1:{port}/")  # sign in: the key goes to an HttpOnly cookie
            page.fill("#key", api["keys"]["search"])
            page.click("#signin button")
            try:
                page.wait_for_function(
                    "document.getElementById('live').textContent.includes('live index')",
                    timeout=30000,
                )
            except Exception as exc:
                raise AssertionError(f"dashboard did not load: {errors}") from exc
            assert api["version"] in page.inner_text("#live")
            page.fill("#q", "a red circle moving left")
            page.click("#sform button")
            page.wait_for_selector("#results .hit img", timeout=30000)
            hits = page.locator("#results .hit")
            assert hits.count() == 6
            page.wait_for_function(
                "Array.from(document.querySelectorAll('#results img'))"
                ".every(i => i.complete && i.naturalWidth > 0)",
                timeout=30000,
            )
            page.screenshot(path=str(shot), full_page=True)
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert shot.stat().st_size > 20_000
    assert urls and not [u for u in urls if api["keys"]["search"] in u]  # no key in any URL


def _busy_platform(polls: list[dict]) -> None:
    """Between two polls: items finish (counters), a note and a rejection are logged, and an
    evaluation without AVG-A is recorded."""
    from shared.db import counters, session_scope
    from shared.db.models import EvalRun, Job, JobEvent, JobState

    n = len(polls)
    with session_scope() as s:
        if s.get(Job, "chart-job") is None:
            s.add(Job(id="chart-job", kind="synth", state=JobState.running, params={}))
            s.add(EvalRun(id="eval-partial", model="m", benchmark="mini", abilities={"CG": 0.4}))
            s.flush()
        counters.set_counts(s, "chart-job", {"done": 20 * n, "rejected": 2 * n, "failed": n})
        s.add(
            JobEvent(
                job_id="chart-job",
                stage="caption",
                state="rectified",
                reason="raw caption unusable (empty)",
            )
        )
        s.add(JobEvent(job_id="chart-job", stage="media", state="rejected", reason="static video"))


@pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) or os.environ.get("CI")),
    reason="Debian chromium not installed (make tools)",
)
def test_dashboard_charts_notes_and_missing_scores(api, screenshot, monkeypatch):
    """Charts of queue depth, items/min and errors over the page's polls (inline SVG, nothing
    fetched from elsewhere); notes apart from rejections; a missing AVG-A shown as —."""
    import uvicorn
    from playwright.sync_api import sync_playwright

    polls: list[dict] = []

    def depths() -> dict:
        polls.append({"media": 7 - len(polls), "caption": 2 * len(polls)})
        return polls[-1]

    monkeypatch.setattr("shared.queue.queue_depths", depths)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(api["app"], host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    shot = screenshot("dashboard-charts.png")
    urls: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1300, "height": 1400})
            page.on("request", lambda r: urls.append(r.url))
            t0 = time.time()  # seconds (the Python API of page.clock)
            page.clock.set_fixed_time(t0)  # the page's clock: one poll every 30 s below
            page.goto(f"http://127.0.0.1:{port}/")
            page.fill("#key", api["keys"]["search"])
            page.click("#signin button")
            page.wait_for_function(
                "document.getElementById('live').textContent.includes('live index')",
                timeout=30000,
            )
            for i in range(1, 5):  # four more polls, the platform busier before each
                _busy_platform(polls)
                page.clock.set_fixed_time(t0 + 30 * i)
                page.evaluate("refresh()")
            assert page.evaluate("hist.length") == 5
            for chart in ("#qchart", "#ratechart", "#errchart"):
                assert page.locator(f"{chart} polyline").count() >= 1, chart
            assert page.locator("#qchart polyline").count() == 2  # one line per queue
            assert "items/min" in page.text_content("#ratechart")
            assert "46.00" in page.text_content("#ratechart")  # 23 items per 30 s poll
            assert "-2.0 min" in page.text_content("#qchart")
            assert "rejected" in page.text_content("#errchart")
            assert "raw caption unusable" in page.inner_text("#notes")
            assert "raw caption unusable" not in page.inner_text("#errors")
            assert "static video" in page.inner_text("#errors")
            evals = page.inner_text("#evaltable")
            assert "—" in evals and "0.000" not in evals
            page.screenshot(path=str(shot), full_page=True)
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert len(polls) >= 5 and shot.stat().st_size > 20_000
    assert all(u.startswith(f"http://127.0.0.1:{port}/") for u in urls)  # no CDN, nothing else
    assert not [u for u in urls if api["keys"]["search"] in u]
