"""The embedder: offline bundle, SPEC §6.3 inputs, pooling, invariances, LoRA adapters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

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
    for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|video_pad|>", "<|image_pad|>"):
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
        f"<|im_start|>system\n{instr}<|im_end|>\n<|im_start|>user\na red circle<|im_end|>\n<|im_start|>assistant\n<|endoftext|>")
    assert build_prompt(video=True) == (
        f"<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>\n<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>"
        "<|im_end|>\n<|im_start|>assistant\n<|endoftext|>")
    assert build_prompt("more blue", image=True, instruction="Find.") == (
        "<|im_start|>system\nFind.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>more blue"
        "<|im_end|>\n<|im_start|>assistant\n<|endoftext|>")
    # the processor's own chat template agrees, minus the appended EOD
    msgs = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "x"}]}]
    assert embedder.processor.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) + "<|endoftext|>" == build_prompt("x", video=True)


@pytest.mark.parametrize("side", ["left", "right"])
def test_pooled_token_is_the_appended_eod(embedder, side):
    embedder.processor.tokenizer.padding_side = side
    batch = embedder.collate([EmbedInput(text="a"), EmbedInput(text="a much longer text about a green square")])
    mask = batch["attention_mask"]
    ids = batch["input_ids"]
    pos = torch.where(mask[:, -1] == 1, torch.full_like(mask[:, 0], ids.shape[1] - 1), mask.sum(1) - 1)
    assert (ids[torch.arange(2), pos] == embedder.eod_id).all()
    h = torch.randn(2, ids.shape[1], 4)
    assert torch.equal(pool_last(h, mask), h[torch.arange(2), pos])
    embedder.processor.tokenizer.padding_side = "left"


def _all_kinds(videos):
    frame = np.zeros((64, 64, 3), np.uint8)
    frame[20:40, 20:40] = (220, 30, 30)
    return [EmbedInput(text="a red circle", instruction=UVRB_INSTRUCTIONS["MSRVTT"]),
            EmbedInput(image=frame),
            EmbedInput(video=str(videos[0])),
            EmbedInput(text="then it turns blue", image=frame, instruction=UVRB_INSTRUCTIONS["MS-TI"]),
            EmbedInput(text="what happens next", video=str(videos[1]), instruction=UVRB_INSTRUCTIONS["MS-TV"])]


def test_every_kind_has_unit_norm_and_is_batch_and_padding_invariant(embedder, videos):
    items = _all_kinds(videos)
    mixed = embedder.embed(items, batch_size=8)
    assert mixed.shape == (5, embedder.dim) and np.allclose(np.linalg.norm(mixed, axis=1), 1, atol=1e-5)
    alone = np.stack([embedder.embed([it])[0] for it in items])
    assert ((alone * mixed).sum(1) >= 0.9999).all()
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


def test_text_is_truncated_never_the_visual_tokens(embedder, videos, monkeypatch):
    monkeypatch.setattr(embedder.settings.model, "max_length", 120)
    batch = embedder.collate([EmbedInput(text="red " * 500, video=str(videos[0]))])
    assert batch["input_ids"].shape[1] <= 121
    assert int((batch["input_ids"] == embedder.processor.video_token_id).sum()) > 0
    monkeypatch.setattr(embedder.settings.model, "max_length", 10)
    with pytest.raises(ValueError, match="visual tokens"):
        embedder.collate([EmbedInput(text="x", video=str(videos[0]))])


def test_lora_adapter_changes_embeddings_and_merges_exactly(tiny_model_dir, tmp_path, videos):
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2_5_VLForConditionalGeneration

    base = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_model_dir)
    torch.manual_seed(0)
    peft = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft.save_pretrained(tmp_path / "adapter")
    merged = peft.merge_and_unload()
    merged.save_pretrained(tmp_path / "merged")
    from transformers import AutoProcessor

    AutoProcessor.from_pretrained(tiny_model_dir).save_pretrained(tmp_path / "merged")
    items = [EmbedInput(text="a blue square"), EmbedInput(video=str(videos[0]))]
    plain = Embedder(tiny_model_dir).embed(items)
    adapted = Embedder(tiny_model_dir, tmp_path / "adapter").embed(items)
    exported = Embedder(tmp_path / "merged").embed(items)
    assert ((plain * adapted).sum(1) < 0.999).all()
    assert ((adapted * exported).sum(1) > 0.99999).all()
