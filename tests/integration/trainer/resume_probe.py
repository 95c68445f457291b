"""One trainer process for the resume test, with probes on what this process did.

``python -m tests.integration.trainer.resume_probe CONFIG REPORT [KILL_AT]`` runs
``train(TrainConfig(**CONFIG))`` (CONFIG: a JSON file) and writes REPORT (JSON):

- ``optimizer_steps``: the optimizer steps this process executed;
- ``resumed_from_step``: the optimizer's own step counter before this process's first step (0 for
  a fresh optimizer; the checkpoint's step when its state was loaded);
- ``first_draw``: the task sampler's state (alignment, σ, RNG) at this process's first draw;
- ``result``: what ``train`` returned.

With KILL_AT > 0 the process SIGKILLs itself inside its KILL_AT-th optimizer step (after that
step's backward, before the update): a hard kill, nothing flushed, no clean-up code runs.

The probes are PyTorch's global optimizer step pre-hook and a wrapper around ``TaskSampler.draw``;
nothing in the trainer is changed for the test."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any


def main(config_path: str, report_path: str, kill_at: int = 0) -> None:
    import torch
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    from services.trainer.loop import TrainConfig, train
    from services.trainer.pyramid import TaskSampler

    report: dict[str, Any] = {"optimizer_steps": 0, "resumed_from_step": None, "first_draw": None}
    out = Path(report_path)

    def write() -> None:
        out.write_text(json.dumps(report, default=str))

    def before_step(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:  # noqa: ANN401
        if report["resumed_from_step"] is None:
            steps = [int(s["step"]) for s in opt.state.values() if "step" in s]
            report["resumed_from_step"] = max(steps, default=0)
        report["optimizer_steps"] += 1
        if report["optimizer_steps"] == kill_at:
            write()
            os.kill(os.getpid(), signal.SIGKILL)

    register_optimizer_step_pre_hook(before_step)
    draw = TaskSampler.draw

    def first_draw(self: TaskSampler) -> str:
        if report["first_draw"] is None:
            report["first_draw"] = json.loads(json.dumps(self.state_dict(), default=str))
        return draw(self)

    TaskSampler.draw = first_draw
    report["result"] = train(TrainConfig(**json.loads(Path(config_path).read_text())))
    write()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0)
