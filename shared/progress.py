"""Progress on long CLI work (synthesis, evaluation, index builds, training): a rich progress bar
on a terminal; otherwise (piped, in a service's log) one plain line on stderr when the work starts,
at least every ``interval_s`` while it runs (from a ticker thread, so a slow unit still shows the
job is alive) and when it ends. Lines go to stderr so a command's result on stdout stays clean.

    with ProgressReport("eval", total=16, unit="dataset") as progress:
        for name in names:
            ...
            progress.advance(dataset=name, score=f"{score:.3f}")
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, Any

DEFAULT_INTERVAL_S = 10.0


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class ProgressReport:
    """``advance(n, **fields)`` after each unit; ``fields`` (loss, dataset, …) are shown beside
    the count, rate and ETA. ``tty`` forces the mode (default: whether ``stream`` is a terminal)."""

    def __init__(
        self,
        title: str,
        total: int | None,
        unit: str = "item",
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        stream: IO[str] | None = None,
        tty: bool | None = None,
    ) -> None:
        self.title, self.total, self.unit = title, total, unit
        self.interval_s = interval_s
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.done = 0
        self.fields: dict[str, Any] = {}
        self._t0 = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._bar: Any = None  # a rich Progress on a terminal
        self._task: Any = None

    # --- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> ProgressReport:
        self._t0 = time.monotonic()
        if self.tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=Console(file=self.stream),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.title, total=self.total, rate="", info="")
        else:
            self._emit("started")
            self._ticker = threading.Thread(
                target=self._tick, name=f"progress-{self.title}", daemon=True
            )
            self._ticker.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        self.close("failed" if exc_type else "done")

    def close(self, how: str = "done") -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
            self._ticker = None
            self._emit(how)
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    # --- reporting -------------------------------------------------------------------------------
    def advance(self, n: int = 1, **fields: Any) -> None:
        with self._lock:
            self.done += n
            self.fields.update(fields)
        if self._bar is not None:
            self._bar.update(self._task, advance=n, rate=self._rate(), info=self._info())

    def update(self, **fields: Any) -> None:
        """Change the fields shown without counting a unit (e.g. the dataset now being scored)."""
        with self._lock:
            self.fields.update(fields)
        if self._bar is not None:
            self._bar.update(self._task, info=self._info())

    def line(self, state: str = "running") -> str:
        with self._lock:
            done, total = self.done, self.total
            elapsed = time.monotonic() - self._t0
            count = f"{done}/{total}" if total else f"{done}"
            pct = f" ({100 * done / total:.0f}%)" if total else ""
            eta = ""
            if total and done and state == "running":
                eta = f" ETA {_clock(elapsed / done * (total - done))}"
            info = self._info()
        return (
            f"[{self.title}] {state} {count} {self.unit}s{pct} {self._rate()} "
            f"elapsed {_clock(elapsed)}{eta}{(' ' + info) if info else ''}"
        )

    def _rate(self) -> str:
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        return f"{self.done / elapsed:.2f} {self.unit}s/s"

    def _info(self) -> str:
        return " ".join(f"{k}={_fmt(v)}" for k, v in self.fields.items())

    def _emit(self, state: str) -> None:
        print(self.line(state), file=self.stream, flush=True)

    def _tick(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._emit("running")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
