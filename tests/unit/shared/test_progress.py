"""Progress reports: piped output gets a line at start, at least every interval while a slow
unit runs, and at the end, with count, rate, ETA and the fields; a terminal gets a rich bar."""

from __future__ import annotations

import io
import threading

from shared.progress import ProgressReport


def test_piped_lines_start_tick_and_end():
    out = io.StringIO()
    ticked = threading.Event()
    with ProgressReport(
        "eval", total=4, unit="dataset", interval_s=0.05, stream=out, tty=False
    ) as p:
        p.advance(dataset="MSRVTT", score=0.4321)
        # a slow unit: the ticker still reports (wait for its line instead of sleeping a fixed time)
        for _ in range(400):
            if out.getvalue().count("running") >= 2:
                ticked.set()
                break
            threading.Event().wait(0.01)
        p.advance(2, dataset="DiDeMo")
    lines = out.getvalue().splitlines()
    assert ticked.is_set(), lines
    assert lines[0].startswith("[eval] started 0/4 datasets")
    running = [ln for ln in lines if " running " in ln]
    assert running and "1/4 datasets (25%)" in running[0] and "dataset=MSRVTT" in running[0]
    assert "score=0.4321" in running[0] and "ETA " in running[0] and "datasets/s" in running[0]
    assert lines[-1].startswith("[eval] done 3/4 datasets (75%)") and "dataset=DiDeMo" in lines[-1]


def test_failure_is_reported_as_failed():
    out = io.StringIO()
    try:
        with ProgressReport(
            "index", total=None, unit="point", interval_s=60, stream=out, tty=False
        ) as p:
            p.advance(256)
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert out.getvalue().splitlines()[-1].startswith("[index] failed 256 points")


def test_terminal_gets_a_bar():
    out = io.StringIO()
    with ProgressReport("train", total=10, unit="step", stream=out, tty=True) as p:
        for i in range(10):
            p.advance(loss=1.0 / (i + 1))
    text = out.getvalue()
    assert "train" in text and "10/10" in text and "loss=0.1" in text
