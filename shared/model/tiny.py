"""The tiny offline bundles: Qwen2.5-VL (GVE's architecture) or Qwen2-VL (GME's, a prober), the
real architecture with random weights, a tokenizer trained offline that carries Qwen's special
tokens and chat template, and the real processor — saved in Hugging Face format so everything
loads it with ``from_pretrained(DIR)`` like a real checkpoint. Deterministic for a seed.

Its processor's pixel limits are small (TINY_MIN_PIXELS..TINY_MAX_PIXELS: at most 8 tokens per
picture or 2-frame group), as a real checkpoint's processor config sets its own: the reference
preprocessing sizes a video's frames first, then the processor fits them into these limits, so a
tiny model stays cheap on CPU while taking every step a real checkpoint takes."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path
from typing import Any

from shared.config import Settings, get_settings
from shared.model.prompts import TASK_INSTRUCTIONS, UVRB_INSTRUCTIONS

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
QWEN_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
    r"""\s*[\r\n]+|\s+(?!\S)|\s+"""
)
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Caption-like corpus for the offline BPE: the procedural world's words plus the instructions.
_WORDS = (
    "a an the and then after that next later finally first shot scene cut cuts to of on in at "
    "with while small large striped solid circle square triangle red green blue yellow white "
    "magenta cyan orange black navy dark gray maroon background moves moving left right up down "
    "top bottom center appears disappears turns changes color camera pans pan zooms zoom static "
    "still stays keeps calm lively minimalist animation geometric shapes shot shots what happens "
    "next continuing this clip same reference image video from place after which object objects "
    "frame"
).split()


def _corpus() -> list[str]:
    lines = (
        list(UVRB_INSTRUCTIONS.values())
        + list(TASK_INSTRUCTIONS.values())
        + ["You are a helpful assistant."]
    )
    lines += [" ".join(_WORDS[i : i + 9]) for i in range(0, len(_WORDS), 3)]
    lines += [f"{w} {w}s {w}ed {w}ing" for w in _WORDS] + [
        "0 1 2 3 4 5 6 7 8 9 10 100 1000 , . ; : ! ? ' \" ( ) - _ / #"
    ]
    return lines * 3


def build_tokenizer():  # noqa: ANN201 - returns a transformers Qwen2Tokenizer
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, trainers
    from tokenizers.models import BPE
    from transformers import Qwen2Tokenizer

    tok = Tokenizer(
        BPE(
            unk_token=None,
            continuing_subword_prefix="",
            end_of_word_suffix="",
            fuse_unk=False,
            byte_fallback=False,
        )
    )
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1000,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer)
    model = json.loads(tok.to_str())["model"]
    vocab = model["vocab"]  # specials keep ids 0..13, as in Qwen (endoftext first)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    hf = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,  # type: ignore[arg-type]  # transformers takes (a, b) pairs; its hint says str
        model_max_length=32768,
        unk_token=None,  # type: ignore[arg-type]  # Qwen has no unk token; the hint says str
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    hf.add_special_tokens(
        {"additional_special_tokens": [t for t in SPECIAL_TOKENS if t not in ("<|im_end|>",)]}
    )
    hf.chat_template = CHAT_TEMPLATE
    return hf


ARCHS = ("qwen2_5_vl", "qwen2_vl")
TINY_MIN_PIXELS = 56 * 56  # Qwen2.5-VL's own processor minimum
TINY_MAX_PIXELS = 8 * 28 * 28  # a 64x64 demo video: 2x2 tokens per 2-frame group, as before


def build_processor(
    tokenizer,
    min_pixels: int = TINY_MIN_PIXELS,
    max_pixels: int = TINY_MAX_PIXELS,  # noqa: ANN001
    arch: str = "qwen2_5_vl",
):  # noqa: ANN201
    from transformers import (
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    common: dict[str, Any] = dict(
        patch_size=14,
        temporal_patch_size=2,
        merge_size=2,
        image_mean=[0.48145466, 0.4578275, 0.40821073],
        image_std=[0.26862954, 0.26130258, 0.27577711],
        size={"shortest_edge": min_pixels, "longest_edge": max_pixels},
    )
    cls = Qwen2VLProcessor if arch == "qwen2_vl" else Qwen2_5_VLProcessor
    return cls(
        image_processor=Qwen2VLImageProcessor(**common),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(**common),
        chat_template=CHAT_TEMPLATE,
    )


def _vision_config(arch: str) -> dict:
    common = dict(
        depth=2, num_heads=4, patch_size=14, temporal_patch_size=2, spatial_merge_size=2, in_chans=3
    )
    if arch == "qwen2_vl":  # Qwen2-VL's vision tower: full attention, MLP ratio, embed_dim
        return dict(common, embed_dim=64, hidden_size=128, mlp_ratio=2)
    return dict(
        common,
        hidden_size=64,
        intermediate_size=128,
        window_size=112,
        fullatt_block_indexes=[1],
        out_hidden_size=128,
        tokens_per_second=2,
    )


def build_tiny_bundle(
    out_dir: str | Path,
    seed: int = 0,
    arch: str = "qwen2_5_vl",
    min_pixels: int = TINY_MIN_PIXELS,
    max_pixels: int = TINY_MAX_PIXELS,
) -> Path:
    """Build and save the bundle (``arch``: qwen2_5_vl or qwen2_vl); returns ``out_dir``.
    ``min_pixels``/``max_pixels``: its processor's limits (a real checkpoint's: 3136..12845056)."""
    import torch
    import transformers

    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; use one of {', '.join(ARCHS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer()
    proc = build_processor(tok, min_pixels, max_pixels, arch)
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    vocab_size = (len(tok) + 63) // 64 * 64
    config_cls, model_cls = (
        (transformers.Qwen2VLConfig, transformers.Qwen2VLForConditionalGeneration)
        if arch == "qwen2_vl"
        else (transformers.Qwen2_5_VLConfig, transformers.Qwen2_5_VLForConditionalGeneration)
    )
    config = config_cls(
        vision_config=_vision_config(arch),
        text_config=dict(
            vocab_size=vocab_size,
            hidden_size=128,
            intermediate_size=256,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=32768,
            rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [4, 6, 6]},
            bos_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model_type: type[transformers.PreTrainedModel] = model_cls
    model = model_type(config).eval()
    proc.save_pretrained(out)
    model.save_pretrained(out)
    kind = "tiny-qwen2-vl" if arch == "qwen2_vl" else "tiny-qwen2.5-vl"
    (out / "univr_bundle.json").write_text(json.dumps({"kind": kind, "seed": seed, "arch": arch}))
    return out


def ensure_tiny_bundle(settings: Settings | None = None) -> Path:
    """The tiny bundle under the univr home, built once (a file lock keeps concurrent workers
    safe)."""
    settings = settings or get_settings()
    out = settings.tiny_model_path
    marker = out / "univr_bundle.json"
    if marker.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / ".tiny.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists():
            build_tiny_bundle(out, seed=settings.model.seed)
    return out
