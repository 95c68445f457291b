"""One rank of the two-process loss check, started by torchrun (``python -m torch.distributed.run``)
from tests/unit/trainer/test_loss.py: each rank takes its half of the batch (uneven hard negatives),
backpropagates the InfoNCE loss, all-reduces the gradient with SUM as the training loop does, and
rank 0 saves loss and gradient to the path given as the first argument. Then the same with
Gradient Cache (chunks of 4: uneven on both ranks) through a linear stand-in for the embedder."""

from __future__ import annotations

import sys

import torch
import torch.distributed as dist
import torch.nn.functional as F

from services.trainer.gradcache import grad_cache_backward
from services.trainer.loss import infonce
from tests.unit.trainer.test_loss import HARD_GROUPS, B, _data, _forward


class LinearEmbedder:
    """``collate``/``forward``/``device`` like shared.model.Embedder: rows of features → unit
    rows."""

    device = torch.device("cpu")

    def __init__(self, w: torch.Tensor):
        self.w = w

    def collate(self, rows: torch.Tensor) -> torch.Tensor:
        return rows

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return F.normalize(rows @ self.w, dim=-1)


def main(result_file: str) -> None:
    dist.init_process_group("gloo")  # env:// — RANK, WORLD_SIZE, MASTER_ADDR/PORT from torchrun
    rank = dist.get_rank()
    xq, xy, xh, groups, w = _data()
    w = w.clone().requires_grad_()
    sl = slice(rank * B, (rank + 1) * B)
    hs = slice(0, 3) if rank == 0 else slice(3, 4)
    out = _forward(w, xq[sl], xy[sl], xh[hs], groups[sl], HARD_GROUPS[hs])
    out["loss"].backward()
    grad = w.grad.clone()
    dist.all_reduce(grad)
    w_gc = w.detach().clone().requires_grad_()
    gc = grad_cache_backward(
        LinearEmbedder(w_gc),
        [xq[sl], xy[sl], xh[hs]],
        lambda q, y, h: infonce(q, y, groups[sl], 0.05, h, HARD_GROUPS[hs]),
        chunk=4,
    )
    gc_grad = w_gc.grad.clone()
    dist.all_reduce(gc_grad)
    if rank == 0:
        torch.save(
            {
                "loss": out["loss"].detach().clone(),
                "grad": grad,
                "gc_loss": gc["loss"],
                "gc_grad": gc_grad,
            },
            result_file,
        )
    dist.barrier()  # no rank tears gloo down while another still talks to it
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
