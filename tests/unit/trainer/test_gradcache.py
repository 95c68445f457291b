"""Gradient Cache on the tiny bundle (LoRA on every block, dropout 0.1): the loss and every LoRA
gradient equal those of the same chunks forwarded with autograd and backpropagated once (dropout
on; the RNG is replayed per chunk), and, without dropout, those of the plain unchunked step; chunk
sizes that divide the batch and that do not; hard negatives included. A run with
``UNIVR_TRAIN__GRAD_CACHE=true`` (and one without) resumes from a checkpoint to the same weights as
an uninterrupted run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from services.trainer import loop
from services.trainer.gradcache import grad_cache_backward
from services.trainer.loop import TrainConfig, _lora, forward_backward, train
from services.trainer.loss import infonce
from shared.config import TrainSettings, get_settings
from shared.model import Embedder, EmbedInput

B, H = 6, 3  # pairs, hard negatives
TS = TrainSettings(lora_dropout=0.1, lora_scope="all", temperature=0.05)
WORDS = "a red green blue circle square triangle moves left right up down then turns".split()


@pytest.fixture(scope="module")
def embedder(tiny_model_dir):
    """The tiny bundle with LoRA (dropout 0.1) on every block; the adapters are set to random
    values (B starts at zero, which would leave A's gradients zero)."""
    e = Embedder(tiny_model_dir, device="cpu")
    _lora(e, TS)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in e.model.parameters():
            if p.requires_grad:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    return e


@pytest.fixture(scope="module")
def batch():
    """Text queries (instruction, uneven lengths), video targets, hard-negative videos; groups with
    a duplicate (pairs 3 and 4) and a hard negative of a positive's group (masked)."""
    rng = np.random.default_rng(0)

    def video() -> np.ndarray:
        return rng.integers(0, 255, (8, 56, 56, 3), dtype=np.uint8)

    q = [
        EmbedInput(
            text=" ".join(rng.choice(WORDS, int(rng.integers(2, 12)))),
            instruction="Find a video according to the given text.",
        )
        for _ in range(B)
    ]
    y = [EmbedInput(video=video()) for _ in range(B)]
    h = [EmbedInput(video=video()) for _ in range(H)]
    return q, y, h, [0, 1, 2, 3, 3, 5], [100, 101, 2]


def _params(e: Embedder) -> dict[str, torch.nn.Parameter]:
    return {n: p for n, p in e.model.named_parameters() if p.requires_grad}


def _run(e: Embedder, seed: int, fn) -> tuple[float, dict[str, torch.Tensor]]:  # noqa: ANN001
    """Loss and gradients of ``fn()`` from zeroed gradients and torch seed ``seed``."""
    params = _params(e)
    for p in params.values():
        p.grad = None
    torch.manual_seed(seed)
    loss = float(fn()["loss"].detach())
    return loss, {
        n: p.grad.clone() if p.grad is not None else torch.zeros_like(p) for n, p in params.items()
    }


def _chunked_autograd(e: Embedder, batch, chunk: int) -> dict[str, torch.Tensor]:  # noqa: ANN001
    """The reference: the same chunks forwarded with autograd, the loss backpropagated once."""
    q_in, y_in, h_in, groups, hgroups = batch

    def embed(items):  # noqa: ANN001, ANN202
        if not items:
            return None
        return torch.cat(
            [e.forward(e.collate(items[i : i + chunk])) for i in range(0, len(items), chunk)]
        )

    q, y, h = (
        embed(q_in),
        embed(y_in),
        embed(h_in),
    )  # in the order the step embeds them (dropout draws)
    out = infonce(
        q,
        y,
        torch.tensor(groups),
        TS.temperature,
        h,
        torch.tensor(hgroups) if h is not None else None,
    )
    out["loss"].backward()
    return out


def _assert_same(a: tuple[float, dict], b: tuple[float, dict], rtol: float) -> None:
    assert a[0] == pytest.approx(b[0], rel=rtol)
    assert a[1].keys() == b[1].keys()
    scale = max(float(g.abs().max()) for g in b[1].values())
    assert scale > 0
    for name, g in b[1].items():
        assert torch.allclose(a[1][name], g, rtol=rtol, atol=rtol * scale), name


def _worst(a: dict, b: dict) -> float:
    """Largest gradient difference relative to the largest gradient."""
    scale = max(float(g.abs().max()) for g in b.values())
    return max(float((a[n] - b[n]).abs().max()) for n in b) / scale


@pytest.mark.parametrize(
    "chunk", [2, 4]
)  # 2 divides the 6 pairs (not the 3 negatives); 4 divides neither
def test_gradients_equal_chunked_autograd_with_dropout(embedder, batch, chunk):
    embedder.model.train()
    ts = TS.model_copy(update={"grad_cache": True, "grad_cache_chunk": chunk})
    cached = _run(embedder, 7, lambda: forward_backward(embedder, *batch, ts))
    reference = _run(embedder, 7, lambda: _chunked_autograd(embedder, batch, chunk))
    _assert_same(cached, reference, rtol=1e-5)
    # dropout is live: another seed draws other masks, far beyond the tolerance (so a second pass
    # that did not replay the first pass's RNG state would fail the check above)
    other = _run(embedder, 8, lambda: _chunked_autograd(embedder, batch, chunk))
    assert _worst(other[1], reference[1]) > 1e-2


@pytest.mark.parametrize("chunk", [1, 4, 64])  # 64: one chunk holds the whole batch
def test_without_dropout_gradients_equal_the_plain_step(embedder, batch, chunk):
    embedder.model.eval()  # dropout off; nothing else in the model differs between modes
    try:
        plain = _run(embedder, 7, lambda: forward_backward(embedder, *batch, TS))
        cached = _run(
            embedder,
            7,
            lambda: forward_backward(
                embedder,
                *batch,
                TS.model_copy(update={"grad_cache": True, "grad_cache_chunk": chunk}),
            ),
        )
    finally:
        embedder.model.train()
    _assert_same(
        cached, plain, rtol=2e-5
    )  # chunks pad to other lengths: rounding only (measured ≤ 1.2e-6)


def test_a_batch_without_hard_negatives(embedder, batch):
    q_in, y_in, _, groups, _ = batch
    embedder.model.train()
    ts = TS.model_copy(update={"grad_cache": True, "grad_cache_chunk": 4})
    cached = _run(embedder, 3, lambda: forward_backward(embedder, q_in, y_in, [], groups, [], ts))
    reference = _run(
        embedder, 3, lambda: _chunked_autograd(embedder, (q_in, y_in, [], groups, []), 4)
    )
    _assert_same(cached, reference, rtol=1e-5)


def test_rejects_an_empty_chunk(embedder, batch):
    with pytest.raises(ValueError, match="at least 1"):
        grad_cache_backward(embedder, batch[:2], lambda q, y: {"loss": (q * y).sum()}, 0)


def test_setting_from_the_environment(monkeypatch):
    monkeypatch.setenv("UNIVR_TRAIN__GRAD_CACHE", "true")
    monkeypatch.setenv("UNIVR_TRAIN__GRAD_CACHE_CHUNK", "3")
    get_settings.cache_clear()
    ts = TrainConfig(snapshot="s", preset="tiny").train_settings()
    assert ts.grad_cache and ts.grad_cache_chunk == 3


@pytest.mark.parametrize("grad_cache", ["true", "false"])
def test_a_run_resumes_to_the_same_weights(tiny_model_dir, tmp_path, monkeypatch, grad_cache):
    """Four steps with checkpoints every two; then the run again from its step-2 checkpoint."""
    from safetensors.torch import load_file

    from shared.storage import get_store
    from tests.integration.trainer.world_snapshot import build_world_snapshot

    monkeypatch.setenv("UNIVR_TRAIN__GRAD_CACHE", grad_cache)
    monkeypatch.setenv("UNIVR_TRAIN__GRAD_CACHE_CHUNK", "3")
    monkeypatch.setenv("UNIVR_TRAIN__CHECKPOINT_EVERY", "2")
    get_settings.cache_clear()
    snapshot = build_world_snapshot(12, seed=4, size=(56, 56), tasks=("T2V",), hard_negatives=1)

    def run(out: str) -> dict:
        return train(
            TrainConfig(
                snapshot=snapshot,
                model=str(tiny_model_dir),
                sampler="uniform",
                steps=4,
                batch_size=4,
                seed=5,
                out=str(tmp_path / out),
                run_id="gc",
                preset="tiny",
                heldout_fraction=0.0,
                overrides={"lora_dropout": 0.1, "epochs": 1},
            )
        )

    first = run("first")
    store = get_store()
    assert json.loads(store.get_bytes("checkpoints/gc/latest.json"))["step"] == 4
    store.put_bytes(
        "checkpoints/gc/latest.json",
        json.dumps({"step": 2, "prefix": "checkpoints/gc/00000002"}).encode(),
    )
    steps = []
    monkeypatch.setattr(
        loop, "forward_backward", lambda *a: steps.append(a) or forward_backward(*a)
    )
    resumed = run("resumed")
    assert len(steps) == 2  # steps 3 and 4 only: it resumed
    assert all(
        a[-1].grad_cache == (grad_cache == "true") and a[-1].grad_cache_chunk == 3 for a in steps
    )
    assert resumed["curve"] == first["curve"]
    a = load_file(str(tmp_path / "first" / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
