"""Probing a running `make stack` from outside (the e2e uses it; so can a person debugging one):
each service's restart loop and the command under it, the process tree a kill takes down, what is
left after Ctrl-C, the API's health.

    python -m tests.e2e.stack_probe [--dir .stack] [--api http://127.0.0.1:8080]

prints, per service, its loop's PID, the command's PID and how many processes it runs, then
whether ``/healthz`` answers."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import psutil

API = "http://127.0.0.1:8080"


def loop_pids(state: Path) -> dict[str, int]:
    """Each service's restart loop (honcho's process; the command is its child)."""
    path = state / "pids.json"
    return json.loads(path.read_text()) if path.exists() else {}


def command_of(state: Path, service: str) -> psutil.Process | None:
    """The service's command now running under its loop (None between a death and its restart)."""
    pid = loop_pids(state).get(service)
    try:
        children = psutil.Process(pid).children() if pid else []
    except psutil.NoSuchProcess:
        return None
    running = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    named = [c for c in running if _name(c) != "sleep"]  # the loop's pause before a restart
    return named[0] if named else None


def _name(proc: psutil.Process) -> str:
    try:
        return proc.name()
    except psutil.Error:
        return "?"


def tree(pid: int) -> list[psutil.Process]:
    """A process and everything under it."""
    try:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def kill_tree(pid: int) -> list[int]:
    """SIGKILL a process and everything under it (a worker, its pool and its run: a dead host)."""
    procs = tree(pid)
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    return [p.pid for p in procs]


def alive(procs: list[psutil.Process]) -> list[int]:
    """Those of ``procs`` still running (zombies are dead)."""
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
        except psutil.NoSuchProcess:
            pass
    return out


def healthy(api: str = API) -> bool:
    import httpx

    try:
        return httpx.get(f"{api}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def report(state: Path, api: str = API) -> dict[str, Any]:
    services = {}
    for name, pid in sorted(loop_pids(state).items()):
        cmd = command_of(state, name)
        services[name] = {
            "loop": pid,
            "loop_alive": bool(alive(tree(pid)[:1])),
            "command": cmd.pid if cmd else None,
            "processes": len(tree(cmd.pid)) if cmd else 0,
        }
    return {"services": services, "healthz": healthy(api)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", type=Path, default=Path(".stack"))
    p.add_argument("--api", default=API)
    a = p.parse_args(argv)
    out = report(a.dir.resolve(), a.api)
    print(json.dumps(out, indent=1))
    return 0 if out["healthz"] else 1


if __name__ == "__main__":
    sys.exit(main())
