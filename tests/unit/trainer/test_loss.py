"""InfoNCE: symmetric, duplicate positives masked, hard negatives counted; with two processes (gloo)
the loss and gradients equal a single process on the concatenated batch, with and without
Gradient Cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from services.trainer.loss import infonce

D, B = 8, 6
HARD_GROUPS = torch.tensor([100, 101, 102, 103])
ROOT = Path(__file__).resolve().parents[3]


def _data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(2 * B, D, generator=g),
        torch.randn(2 * B, D, generator=g),
        torch.randn(4, D, generator=g),
        torch.tensor([0, 1, 2, 3, 3, 5, 6, 7, 8, 9, 10, 11]),
        torch.randn(D, D, generator=g),
    )


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
    hg = HARD_GROUPS
    without = _forward(w, xq, xy, xh[:0], groups, hg[:0])["loss"]
    with_h = _forward(w, xq, xy, xh, groups, hg)["loss"]
    assert with_h > without


@pytest.mark.timeout(180)
def test_two_processes_equal_one_process_on_the_concatenated_batch(tmp_path):
    """torchrun, two gloo processes on CPU, each with half the batch and uneven hard negatives."""
    xq, xy, xh, groups, w = _data()
    w = w.clone().requires_grad_()
    single = _forward(w, xq, xy, xh, groups, HARD_GROUPS)
    single["loss"].backward()
    result_file = tmp_path / "res.pt"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(Path(__file__).with_name("dist_worker.py")),
            str(result_file),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = torch.load(result_file)
    assert float(res["loss"]) == pytest.approx(float(single["loss"]), rel=1e-5)
    assert torch.allclose(res["grad"], w.grad, atol=1e-6, rtol=1e-4)
    # Gradient Cache composes with the cross-process negatives and the all-reduce
    assert float(res["gc_loss"]) == pytest.approx(float(single["loss"]), rel=1e-5)
    assert torch.allclose(res["gc_grad"], w.grad, atol=1e-6, rtol=1e-4)
