"""The embedder: offline bundle, SPEC §6.3 inputs, pooling, invariances, LoRA adapters."""

from __future__ import annotations

import io
import re
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from shared.media import MediaError
from shared.model import (
    DEFAULT_SYSTEM,
    UVRB_INSTRUCTIONS,
    Embedder,
    EmbedInput,
    VideoFrames,
    build_prompt,
)
from shared.model.embedder import pool_last
from shared.storage import get_store
from tests.helpers import small_videos


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    return small_videos(tmp_path_factory.mktemp("vids"), 3, seed=1, shots=1)


@pytest.fixture(scope="module")
def embedder(tiny_model_dir):
    return Embedder(tiny_model_dir, device="cpu")


def test_bundle_reloads_offline(tiny_model_dir, monkeypatch):
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    proc = AutoProcessor.from_pretrained(tiny_model_dir)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_model_dir)
    assert type(proc).__name__ == "Qwen2_5_VLProcessor" and model.config.model_type == "qwen2_5_vl"
    tok = proc.tokenizer
    for t in (
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|vision_start|>",
        "<|video_pad|>",
        "<|image_pad|>",
    ):
        assert len(tok(t, add_special_tokens=False)["input_ids"]) == 1


def test_bundle_is_deterministic_for_a_seed(tmp_path):
    from safetensors.torch import load_file

    from shared.model.tiny import build_tiny_bundle

    a = load_file(build_tiny_bundle(tmp_path / "a", 3) / "model.safetensors")
    b = load_file(build_tiny_bundle(tmp_path / "b", 3) / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_prompt_strings_are_spec_exact(embedder):
    instr = UVRB_INSTRUCTIONS["MSRVTT"]
    assert build_prompt("a red circle", instruction=instr) == (
        f"<|im_start|>system\n{instr}<|im_end|>\n"
        "<|im_start|>user\na red circle<|im_end|>\n<|im_start|>assistant\n<|endoftext|>"
    )
    assert build_prompt(video=True) == (
        f"<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>\n<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>"
        "<|im_end|>\n<|im_start|>assistant\n<|endoftext|>"
    )
    assert build_prompt("more blue", image=True, instruction="Find.") == (
        "<|im_start|>system\nFind.<|im_end|>\n<|im_start|>user\n"
        "<|vision_start|><|image_pad|><|vision_end|>more blue"
        "<|im_end|>\n<|im_start|>assistant\n<|endoftext|>"
    )
    # the processor's own chat template agrees, minus the appended EOD
    msgs = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "x"}]}]
    assert embedder.processor.apply_chat_template(
        msgs, tokenize=False, add_generation_prompt=True
    ) + "<|endoftext|>" == build_prompt("x", video=True)


@pytest.mark.parametrize("side", ["left", "right"])
def test_pooled_token_is_the_appended_eod(embedder, side):
    embedder.processor.tokenizer.padding_side = side
    batch = embedder.collate(
        [EmbedInput(text="a"), EmbedInput(text="a much longer text about a green square")]
    )
    mask = batch["attention_mask"]
    ids = batch["input_ids"]
    pos = torch.where(
        mask[:, -1] == 1, torch.full_like(mask[:, 0], ids.shape[1] - 1), mask.sum(1) - 1
    )
    assert (ids[torch.arange(2), pos] == embedder.eod_id).all()
    h = torch.randn(2, ids.shape[1], 4)
    assert torch.equal(pool_last(h, mask), h[torch.arange(2), pos])
    embedder.processor.tokenizer.padding_side = "left"


def _collapse(ids: list[int], embedder) -> str:  # noqa: ANN001
    """The decoded model input with each run of visual pad tokens folded back to one placeholder."""
    pads = {embedder.processor.video_token_id, embedder.processor.image_token_id}
    kept = [t for i, t in enumerate(ids) if t not in pads or i == 0 or ids[i - 1] != t]
    return embedder.processor.tokenizer.decode(kept, skip_special_tokens=False)


@pytest.mark.parametrize("side", ["left", "right"])
def test_model_input_is_the_pinned_prompt_and_pools_its_eod(embedder, videos, side):
    """SPEC §6.3 end to end: what the model receives for a text query with instruction, a video
    candidate and a text+image query is exactly the pinned prompt, and pooling takes its EOD."""
    instr = UVRB_INSTRUCTIONS["MSRVTT"]
    frame = np.full((56, 84, 3), 128, np.uint8)
    items = [
        EmbedInput(text="a red circle", instruction=instr),
        EmbedInput(video=str(videos[0])),
        EmbedInput(text="more blue", image=frame, instruction="Find."),
    ]
    expected = [
        f"<|im_start|>system\n{instr}<|im_end|>\n<|im_start|>user\na red circle<|im_end|>\n"
        "<|im_start|>assistant\n<|endoftext|>",
        f"<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>\n<|im_start|>user\n<|vision_start|><|video_pad|>"
        "<|vision_end|><|im_end|>\n<|im_start|>assistant\n<|endoftext|>",
        "<|im_start|>system\nFind.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>"
        "more blue<|im_end|>\n<|im_start|>assistant\n<|endoftext|>",
    ]
    embedder.processor.tokenizer.padding_side = side
    try:
        batch = embedder.collate(items)
    finally:
        embedder.processor.tokenizer.padding_side = "left"
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert len(set(mask.sum(1).tolist())) == 3  # three lengths: padding is really exercised
    for row in range(3):
        real = ids[row][mask[row].bool()].tolist()
        assert _collapse(real, embedder) == expected[row]
        assert real[-1] == embedder.eod_id
    pos = mask.sum(1) - 1 if side == "right" else torch.full((3,), ids.shape[1] - 1)
    assert (ids[torch.arange(3), pos] == embedder.eod_id).all()
    h = torch.randn(3, ids.shape[1], 4)
    assert torch.equal(pool_last(h, mask), h[torch.arange(3), pos])


def _all_kinds(videos):
    frame = np.zeros((64, 64, 3), np.uint8)
    frame[20:40, 20:40] = (220, 30, 30)
    return [
        EmbedInput(text="a red circle", instruction=UVRB_INSTRUCTIONS["MSRVTT"]),
        EmbedInput(image=frame),
        EmbedInput(video=str(videos[0])),
        EmbedInput(text="then it turns blue", image=frame, instruction=UVRB_INSTRUCTIONS["MS-TI"]),
        EmbedInput(
            text="what happens next", video=str(videos[1]), instruction=UVRB_INSTRUCTIONS["MS-TV"]
        ),
    ]


def test_every_kind_has_unit_norm_and_is_batch_and_padding_invariant(embedder, videos):
    items = _all_kinds(videos)
    mixed = embedder.embed(items, batch_size=8)
    assert mixed.shape == (5, embedder.dim) and np.allclose(
        np.linalg.norm(mixed, axis=1), 1, atol=1e-5
    )
    alone = np.stack([embedder.embed([it])[0] for it in items])
    assert ((alone * mixed).sum(1) >= 0.9999).all()
    shuffled = embedder.embed(
        items[::-1] + items[:2], batch_size=3, bucket=False
    )  # other neighbours
    assert ((shuffled[:5][::-1] * mixed).sum(1) >= 0.9999).all()
    embedder.processor.tokenizer.padding_side = "right"
    right = embedder.embed(items, batch_size=8)
    embedder.processor.tokenizer.padding_side = "left"
    assert ((right * mixed).sum(1) >= 0.9999).all()


def test_video_from_stored_frames_equals_video_from_arrays(embedder, videos):
    from PIL import Image

    from shared.media.frames import sample_frames

    frames, _ = sample_frames(videos[2], 8)
    store = get_store()
    keys = []
    for i, f in enumerate(frames):
        key = f"clips/x/frames/{i:02d}.png"
        buf = __import__("io").BytesIO()
        Image.fromarray(f).save(buf, format="PNG")
        store.put_bytes(key, buf.getvalue())
        keys.append(key)
    a = embedder.embed([EmbedInput(video=VideoFrames(keys, fps=1.0))])
    b = embedder.embed([EmbedInput(video=frames)])
    assert float((a * b).sum()) >= 0.9999


@pytest.mark.parametrize("max_length", [120, 121, 157])
def test_text_is_truncated_never_the_visual_tokens(embedder, videos, monkeypatch, max_length):
    monkeypatch.setattr(embedder.settings.model, "max_length", max_length)
    full = embedder.collate([EmbedInput(text="red", video=str(videos[0]))])
    batch = embedder.collate(
        [
            EmbedInput(text="a red circle turns " * 200, video=str(videos[0])),
            EmbedInput(text="blue " * 300, instruction="Find."),
        ]
    )
    ids, mask = batch["input_ids"], batch["attention_mask"]
    lengths = mask.sum(1)
    assert (lengths <= max_length).all() and (
        lengths >= max_length - 2
    ).all()  # cut to fit, not further
    assert (ids[:, -1] == embedder.eod_id).all()  # the EOD survives truncation (left padding)
    video_id = embedder.processor.video_token_id
    assert int((ids[0] == video_id).sum()) == int(
        (full["input_ids"] == video_id).sum()
    )  # all visual tokens
    monkeypatch.setattr(embedder.settings.model, "max_length", 10)
    with pytest.raises(ValueError, match="visual tokens"):
        embedder.collate([EmbedInput(text="x", video=str(videos[0]))])


def test_second_per_grid_ts_is_two_over_the_sampling_fps(embedder, videos):
    from shared.media.frames import sampling_fps, video_duration

    fps_sampled = sampling_fps(8, video_duration(videos[1]))  # 8 frames spread over the clip
    frames = np.zeros((8, 56, 56, 3), np.uint8)
    batch = embedder.collate(
        [
            EmbedInput(video=str(videos[1])),
            EmbedInput(video=frames),
            EmbedInput(text="x", video=frames),
        ]
    )
    expected = [2 / fps_sampled, 2 / embedder.settings.model.fps, 2 / embedder.settings.model.fps]
    assert np.allclose(np.asarray(batch["second_per_grid_ts"], dtype=float), expected)
    assert fps_sampled != embedder.settings.model.fps  # the clip's own rate, not the default


def test_second_per_grid_ts_of_stored_frames_uses_their_fps(embedder):
    store = get_store()
    keys = []
    for i in range(8):
        buf = io.BytesIO()
        Image.fromarray(np.full((56, 56, 3), i * 30, np.uint8)).save(buf, format="PNG")
        store.put_bytes(f"clips/s/frames/{i:02d}.png", buf.getvalue())
        keys.append(f"clips/s/frames/{i:02d}.png")
    batch = embedder.collate(
        [EmbedInput(video=VideoFrames(keys, fps=0.5)), EmbedInput(video=VideoFrames(keys))]
    )
    assert np.allclose(
        np.asarray(batch["second_per_grid_ts"], dtype=float), [4.0, 2 / embedder.settings.model.fps]
    )


def test_store_images_embed_like_the_same_pixels(embedder):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    get_store().put_bytes("clips/y/key/00.png", buf.getvalue())
    stored = embedder.embed([EmbedInput(image="store://clips/y/key/00.png", text="a cat")])
    direct = embedder.embed([EmbedInput(image=pixels, text="a cat")])
    assert float((stored * direct).sum()) >= 0.9999
    with pytest.raises(
        MediaError, match=r"input #1: cannot read stored image store://clips/y/key/99.png"
    ):
        embedder.embed([EmbedInput(text="fine"), EmbedInput(image="store://clips/y/key/99.png")])


@pytest.fixture(scope="module")
def adapters(tiny_model_dir, tmp_path_factory):
    """Two LoRA adapters with different weights, a byte copy of the first, and the first merged."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    out = tmp_path_factory.mktemp("adapters")
    for seed in (0, 1):
        base = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_model_dir)
        torch.manual_seed(seed)
        cfg = LoraConfig(
            r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False
        )
        peft = get_peft_model(base, cfg)
        peft.save_pretrained(out / f"adapter{seed}")
        if seed == 0:
            peft.merge_and_unload().save_pretrained(out / "merged")
            AutoProcessor.from_pretrained(tiny_model_dir).save_pretrained(out / "merged")
    shutil.copytree(out / "adapter0", out / "adapter0-copy")
    return out


def test_lora_adapter_changes_embeddings_and_merges_exactly(tiny_model_dir, adapters, videos):
    items = [
        EmbedInput(text="a blue square"),
        EmbedInput(video=str(videos[0])),
        EmbedInput(text="turns red", video=str(videos[1]), instruction=UVRB_INSTRUCTIONS["MS-TV"]),
    ]
    plain = Embedder(tiny_model_dir, device="cpu").embed(items)
    adapted = Embedder(tiny_model_dir, adapters / "adapter0", device="cpu").embed(items)
    exported = Embedder(adapters / "merged", device="cpu").embed(items)
    assert ((plain * adapted).sum(1) < 0.999).all()
    assert ((adapted * exported).sum(1) > 0.99999).all()


def test_model_id_names_weights_adapter_and_recipe(tiny_model_dir, adapters, monkeypatch):
    plain = Embedder(tiny_model_dir, device="cpu")
    with_a = Embedder(tiny_model_dir, adapters / "adapter0", device="cpu")
    ids = {
        plain.model_id,
        with_a.model_id,
        Embedder(
            tiny_model_dir, adapters / "adapter1", device="cpu"
        ).model_id,  # other adapter weights
        Embedder(adapters / "merged", device="cpu").model_id,
    }
    assert len(ids) == 4
    # content-hashed: the same files elsewhere give the same id; the id is stable
    assert (
        Embedder(tiny_model_dir, adapters / "adapter0-copy", device="cpu").model_id
        == with_a.model_id
    )
    assert Embedder(tiny_model_dir, device="cpu").model_id == plain.model_id
    for mid in ids:  # usable as a folder name and inside a Qdrant collection name
        assert "/" not in mid and len(mid) <= 49 and re.fullmatch(r"[A-Za-z0-9_.-]+", mid)
    # the input recipe changes the vectors, so it changes the id
    monkeypatch.setattr(plain.settings.model, "video_max_pixels", 100 * 28 * 28)
    assert (
        Embedder(tiny_model_dir, device="cpu", settings=plain.settings).model_id != plain.model_id
    )


def test_model_id_of_a_hub_name_has_no_slash():
    from shared.model.embedder import _fingerprint, _safe_name

    assert _safe_name("Alibaba-NLP/GVE-7B") == "GVE-7B"
    assert _safe_name("/models/some checkpoint/") == "some-checkpoint"
    assert _fingerprint("Alibaba-NLP/GVE-7B") != _fingerprint("Alibaba-NLP/GVE-3B")
