"""Resumable stages of the demo: each stage's result is a JSON file under ``<out>/stages``.

A stage that already has its result file is skipped on a re-run (``--fresh`` clears them) and keeps
the time its first run took (``_seconds`` in that file: ``timings`` holds it, ``reused`` names
the stage, so a report says "reused, first run took N s", never 0 s); a stage
runs other univr services only through their CLI in a subprocess, so the demo exercises exactly
what a user runs and never imports another service.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.supervise import die_with_parent


class StageError(RuntimeError):
    """A stage failed; the message names the stage and where its log is."""


@dataclass
class StageRunner:
    out: Path
    env: dict[str, str]
    on_start: Callable[[str], None] = lambda name: None
    on_done: Callable[[str, float, bool], None] = lambda name, secs, cached: None
    timings: dict[str, float] = field(default_factory=dict)  # this run's, or the first run's
    reused: list[str] = field(default_factory=list)  # stages whose result this run reused

    @property
    def stage_dir(self) -> Path:
        return self.out / "stages"

    @property
    def log_dir(self) -> Path:
        return self.out / "logs"

    def stage(self, name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        path = self.stage_dir / f"{name}.json"
        if path.exists():
            result = json.loads(path.read_text())
            first = float(result.get("_seconds") or 0.0)
            self.timings[name] = first
            if name not in self.reused:
                self.reused.append(name)
            self.on_done(name, first, True)
            return result
        self.on_start(name)
        t0 = time.perf_counter()
        result = fn()
        secs = round(time.perf_counter() - t0, 2)  # as stored: a reuse reports the same
        result["_seconds"] = secs
        self.timings[name] = secs
        self.stage_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=2, default=str))
        os.replace(tmp, path)
        self.on_done(name, secs, False)
        return result

    def univr(self, stage: str, args: Sequence[str], *, json_out: bool = False) -> Any:
        """Run ``univr ARGS`` in a subprocess; its output goes to ``logs/<stage>.log``.

        With ``json_out`` the command's stdout is parsed as JSON (its last JSON document).
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{stage}.log"
        cmd = [sys.executable, "-c", "from shared.cli import main; main()", *args]
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"$ univr {' '.join(args)}\n")
            fh.flush()
            proc = subprocess.run(
                cmd,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=fh,
                text=True,
                preexec_fn=die_with_parent,  # a killed demo leaves no stage running
            )
            fh.write(proc.stdout)
        if proc.returncode != 0:
            tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
            raise StageError(
                f"stage '{stage}': `univr {' '.join(args)}` exited {proc.returncode}"
                f"; log: {log}\n{tail}"
            )
        if not json_out:
            return proc.stdout
        return parse_last_json(proc.stdout, stage)


def parse_last_json(text: str, what: str) -> Any:
    """The last complete JSON document printed (commands may print progress lines before it)."""
    text = text.strip()
    decoder = json.JSONDecoder()
    for start in [i for i, ch in enumerate(text) if ch in "{["]:
        try:
            obj, end = decoder.raw_decode(text[start:])
        except json.JSONDecodeError:
            continue
        if not text[start + end :].strip():
            return obj
    raise StageError(f"stage '{what}': expected JSON output, got: {text[-500:]!r}")
