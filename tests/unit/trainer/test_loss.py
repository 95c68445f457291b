"""InfoNCE: symmetric, duplicate positives masked, hard negatives counted; with two processes (gloo)
the loss and gradients equal a single process on the concatenated batch."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from services.trainer.loss import infonce

D, B = 8, 6


def _data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(2 * B, D, generator=g), torch.randn(2 * B, D, generator=g), torch.randn(4, D, generator=g),
            torch.tensor([0, 1, 2, 3, 3, 5, 6, 7, 8, 9, 10, 11]), torch.randn(D, D, generator=g))


def _forward(w, xq, xy, xh, groups, hard_groups):
    q, y = F.normalize(xq @ w, dim=-1), F.normalize(xy @ w, dim=-1)
    h = F.normalize(xh @ w, dim=-1)
    return infonce(q, y, groups, 0.05, h, hard_groups)


def test_matches_a_direct_computation_with_masking():
    xq, xy, xh, groups, w = _data()
    w = w.requires_grad_()
    out = _forward(w, xq, xy, xh[:0], groups, torch.zeros(0, dtype=torch.long))
    q, y = F.normalize(xq @ w, dim=-1), F.normalize(xy @ w, dim=-1)
    logits = q @ y.T / 0.05
    same = groups[:, None] == groups[None, :]
    mask = same & ~torch.eye(len(groups), dtype=torch.bool)
    l1 = F.cross_entropy(logits.masked_fill(mask, float("-inf")), torch.arange(len(groups)))
    l2 = F.cross_entropy(logits.T.masked_fill(mask, float("-inf")), torch.arange(len(groups)))
    assert float(out["loss"]) == pytest.approx(float(0.5 * (l1 + l2)), rel=1e-6)


def test_hard_negatives_raise_the_loss():
    xq, xy, xh, groups, w = _data()
    hg = torch.tensor([100, 101, 102, 103])
    without = _forward(w, xq, xy, xh[:0], groups, hg[:0])["loss"]
    with_h = _forward(w, xq, xy, xh, groups, hg)["loss"]
    assert with_h > without


def _worker(rank: int, world: int, init_file: str, result_file: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    xq, xy, xh, groups, w = _data()
    w = w.clone().requires_grad_()
    sl = slice(rank * B, (rank + 1) * B)
    hs = slice(0, 3) if rank == 0 else slice(3, 4)  # uneven hard-negative counts across ranks
    out = _forward(w, xq[sl], xy[sl], xh[hs], groups[sl], torch.tensor([100, 101, 102, 103])[hs])
    out["loss"].backward()
    grad = w.grad.clone()
    dist.all_reduce(grad)  # SUM, as the training loop does
    loss = out["loss"].detach().clone()
    if rank == 0:
        torch.save({"loss": loss, "grad": grad}, result_file)
    # Without a final barrier one rank can tear gloo down while the other still has a pending
    # collective on its socket, and gloo aborts that process ("terminate called ...").
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.timeout(180)
def test_two_processes_equal_one_process_on_the_concatenated_batch():
    xq, xy, xh, groups, w = _data()
    w = w.clone().requires_grad_()
    single = _forward(w, xq, xy, xh, groups, torch.tensor([100, 101, 102, 103]))
    single["loss"].backward()
    with tempfile.TemporaryDirectory() as tmp:
        init_file, result_file = os.path.join(tmp, "init"), os.path.join(tmp, "res.pt")
        mp.spawn(_worker, args=(2, init_file, result_file), nprocs=2, join=True)
        res = torch.load(result_file)
    assert float(res["loss"]) == pytest.approx(float(single["loss"]), rel=1e-5)
    assert torch.allclose(res["grad"], w.grad, atol=1e-6, rtol=1e-4)
