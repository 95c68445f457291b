"""How many CPU threads torch uses per process. Several torch processes on one host, each with
torch's default (one thread per core), oversubscribe the cores, and OpenMP's spinning threads slow
them all down many times over (``bench/torch_threads.py``, 2 cores: two tiny-model training loops
7.7x faster with one thread each than with the default; the demo's training ran 40 s alone and
750 s beside other torch work). So a process that knows it shares the host takes its share: a worker
pool's child gets cores / pool size (``shared.queue.run_worker``); ``torchrun`` already gives each
rank one thread (``OMP_NUM_THREADS=1``). ``model.torch_threads`` overrides both, for every process
that loads an embedder too."""

from __future__ import annotations

import os
import sys

from shared.config import Settings, get_settings


def cpu_cores() -> int:
    """Cores this process may run on (its affinity mask, e.g. a container's cpuset), not the
    host's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def threads_for(processes: int, settings: Settings | None = None) -> int | None:
    """Threads for one of ``processes`` torch processes sharing this host; None: leave torch's
    default (a process alone, with no setting)."""
    configured = (settings or get_settings()).model.torch_threads
    if configured:
        return configured
    if processes <= 1:
        return None
    return max(1, cpu_cores() // processes)


def configure_torch_threads(processes: int = 1, settings: Settings | None = None) -> int | None:
    """Apply ``threads_for`` to this process; returns the count set (None: left to torch). Before
    torch is imported this only sets ``OMP_NUM_THREADS`` (a worker that never uses torch never loads
    it)."""
    n = threads_for(processes, settings)
    if n is None:
        return None
    if "torch" in sys.modules:
        import torch

        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    else:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(n)
    return n
