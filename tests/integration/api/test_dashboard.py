"""The dashboard in headless Chromium (Debian's, driven by Playwright): it loads, shows the live
index and training/eval panels, runs a search and shows results with thumbnails."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

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
def test_dashboard_search_in_chromium(api, tmp_path):
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
    shot = Path(os.environ.get("UNIVR_ARTIFACTS", tmp_path)) / "dashboard.png"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            errors: list[str] = []
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
