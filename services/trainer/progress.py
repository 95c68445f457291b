"""Progress of a training run (rank 0) where the user looks: a rich progress bar on a terminal
(step, loss, lr, σ, task, samples/s, ETA); otherwise one log line per ``train.log_every_s``
seconds at least (a heartbeat thread repeats the last state while a long step runs)."""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)


class TrainProgress:
    def __init__(
        self,
        total: int,
        start: int,
        every_s: float,
        stream: IO[str] | None = None,
        tty: bool | None = None,
        quiet: bool = False,
        width: int | None = None,
    ) -> None:
        self.quiet = quiet
        self.total, self.start, self.every_s = total, start, every_s
        self.stream = stream or sys.stderr
        self.console = Console(file=self.stream, force_terminal=tty, width=width)
        self.tty = self.console.is_terminal if tty is None else tty
        self.t0 = time.monotonic()
        self.step, self.samples, self.fields = start, 0, "starting"
        self.last_line = 0.0
        self.logged_step = -1
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.bar: Progress | None = None
        self.heartbeat: threading.Thread | None = None

    def __enter__(self) -> TrainProgress:
        if self.quiet:
            return self
        if self.tty:
            self.bar = Progress(
                TextColumn("train"),
                BarColumn(bar_width=24),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}", markup=False),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.bar.start()
            self.bar_task = self.bar.add_task(
                "train", total=self.total, completed=self.start, info=""
            )
        else:
            self.heartbeat = threading.Thread(target=self._beat, daemon=True)
            self.heartbeat.start()
        return self

    def note(self, text: str) -> None:
        """A one-off line (the logdir, a resume)."""
        if self.quiet:
            return
        if self.bar:
            self.bar.console.print(text, markup=False, highlight=False)
        else:
            self._write(text)

    def update(
        self, step: int, batch: int, loss: float, lr: float, sigma: float, task: str
    ) -> None:
        if self.quiet:
            return
        with self.lock:
            self.step, self.samples = step, self.samples + batch
            rate = self.samples / max(time.monotonic() - self.t0, 1e-9)
            self.fields = (
                f"loss {loss:.4f} lr {lr:.2e} σ {sigma:.3f} task {task} {rate:.1f} samples/s"
            )
        if self.bar:
            self.bar.update(self.bar_task, completed=step, info=self.fields)
        elif time.monotonic() - self.last_line >= self.every_s or step in (
            self.start + 1,
            self.total,
        ):
            self._line()

    def _eta(self) -> str:
        done = self.step - self.start
        if done <= 0:
            return "?"
        left = (time.monotonic() - self.t0) / done * (self.total - self.step)
        return f"{int(left // 60)}m{int(left % 60):02d}s"

    def _line(self) -> None:
        with self.lock:
            text = f"train step {self.step}/{self.total} {self.fields} ETA {self._eta()}"
            self.logged_step = self.step
        self._write(text)

    def _write(self, text: str) -> None:
        with self.lock:
            self.last_line = time.monotonic()
        print(text, file=self.stream, flush=True)

    def _beat(self) -> None:
        while not self.stop.wait(min(self.every_s / 4, 1.0)):
            if time.monotonic() - self.last_line >= self.every_s:
                self._line()

    def __exit__(self, *exc: Any) -> None:  # noqa: ANN401
        self.stop.set()
        if self.heartbeat:
            self.heartbeat.join()
            if self.logged_step != self.step:  # the last state, whenever the last line was
                self._line()
        if self.bar:
            self.bar.stop()
