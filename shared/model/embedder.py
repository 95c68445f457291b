"""The GVE embedder: any Qwen2.5-VL checkpoint (the tiny bundle, Qwen2.5-VL-3B/7B, GVE-3B/7B)
plus an optional LoRA adapter turns text, images, videos and their compositions into unit vectors
exactly as SPEC §6.3 describes: chat-template prompt with the instruction in the system turn for
queries, visual placeholders then text, an appended ``<|endoftext|>`` that is pooled from the last
hidden layer (left or right padding), L2-normalised.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from shared.config import Settings, get_settings
from shared.model.inputs import (
    EmbedInput,
    FrameCache,
    PreparedVideo,
    item_key,
    resolve_image,
    resolve_video,
)
from shared.model.prompts import build_prompt


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def pick_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def pool_last(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The hidden state of the last attended token, whatever the padding side."""
    if bool((attention_mask[:, -1] == 1).all()):
        return hidden[:, -1]
    last = attention_mask.sum(dim=1) - 1
    return hidden[torch.arange(hidden.size(0), device=hidden.device), last]


def _fingerprint(path: str) -> str:
    p = Path(path)
    if not p.exists():
        return path  # a hub id: the name (and revision in it) is the identity
    h = hashlib.sha256()
    for f in sorted(p.iterdir()):
        if f.is_file() and (f.suffix in {".json", ".safetensors", ".bin"}):
            st = f.stat()
            if st.st_size < 64 * 1024**2:
                h.update(f.read_bytes())
            else:
                h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


class Embedder:
    """Embeds ``EmbedInput``s. ``embed`` is for inference; ``collate`` + ``forward`` keep gradients
    for the trainer, which wraps ``self.model`` with LoRA."""

    def __init__(self, name_or_path: str | Path | None = None, adapter: str | Path | None = None, *,
                 device: str | None = None, dtype: str | None = None, settings: Settings | None = None):
        from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

        self.settings = settings or get_settings()
        ms = self.settings.model
        if not name_or_path:
            name_or_path = ms.name_or_path
        if not name_or_path:
            from shared.model.tiny import ensure_tiny_bundle

            name_or_path = ensure_tiny_bundle(self.settings)
        self.name_or_path = str(name_or_path)
        self.adapter = str(adapter) if adapter else None
        self.device = pick_device(device or ms.device)
        self.dtype = pick_dtype(dtype or ms.dtype, self.device)
        self.processor = AutoProcessor.from_pretrained(self.name_or_path)
        self.processor.tokenizer.padding_side = ms.padding_side
        self.model = Qwen2_5_VLForConditionalGeneration.from_pretrained(self.name_or_path, dtype=self.dtype)
        if self.adapter:
            from peft import PeftModel

            self.model = PeftModel.from_pretrained(self.model, self.adapter)
        self.model.to(self.device).eval()
        self.cache = FrameCache(ms.frame_cache_items)
        self.eod_id = self.processor.tokenizer.convert_tokens_to_ids("<|endoftext|>")
        self._overhead = len(self.processor.tokenizer(build_prompt("", video=True, image=True))["input_ids"])
        self._model_id: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Embedder:
        s = settings or get_settings()
        return cls(s.model.name_or_path or None, s.model.adapter, settings=s)

    # --- identity ----------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        if self._model_id is None:
            parts = [Path(self.name_or_path).name, _fingerprint(self.name_or_path)]
            if self.adapter:
                parts.append(_fingerprint(self.adapter))
            self._model_id = "-".join(parts)
        return self._model_id

    @property
    def dim(self) -> int:
        cfg = self.model.config if not hasattr(self.model, "get_base_model") else self.model.get_base_model().config
        return cfg.text_config.hidden_size

    def _backbone(self) -> torch.nn.Module:
        m = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        return m.model

    # --- inputs ------------------------------------------------------------------------------
    def _prepare(self, item: EmbedInput) -> tuple[str, Any, PreparedVideo | None, int]:
        ms = self.settings.model
        video = resolve_video(item.video, ms.num_frames, ms.fps, self.cache) if item.video is not None else None
        image = resolve_image(item.image) if item.image is not None else None
        visual = self._visual_tokens(image, video)
        text = item.text
        if text:
            budget = ms.max_length - self._overhead - visual - len(self.processor.tokenizer(item.instruction or "")["input_ids"])
            if budget < 0:
                raise ValueError(f"visual tokens alone ({visual}) exceed max_length {ms.max_length}")
            ids = self.processor.tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(ids) > budget:  # truncate the text, never the visual tokens
                text = self.processor.tokenizer.decode(ids[:budget])
        prompt = build_prompt(text, image=image is not None, video=video is not None, instruction=item.instruction)
        cost = len(prompt) // 3 + visual
        return prompt, image, video, cost

    def _visual_tokens(self, image: Any, video: PreparedVideo | None) -> int:
        n = 0
        data = self.processor._get_num_multimodal_tokens(
            image_sizes=[(image.height, image.width)] if image is not None else None,
            video_sizes=[video.frames.shape[:3]] if video is not None else None)
        n += sum(getattr(data, "num_image_tokens", None) or [])
        n += sum(getattr(data, "num_video_tokens", None) or [])
        return n

    def _process(self, prepared: Sequence[tuple[str, Any, PreparedVideo | None, int]]):  # noqa: ANN202
        from transformers.video_utils import VideoMetadata

        ms = self.settings.model
        prompts = [p[0] for p in prepared]
        images = [p[1] for p in prepared if p[1] is not None]
        videos = [p[2] for p in prepared if p[2] is not None]
        kwargs: dict[str, Any] = {}
        if images:
            kwargs["images"] = images
            kwargs["images_kwargs"] = {"size": {"shortest_edge": ms.frame_min_pixels, "longest_edge": ms.image_max_pixels}}
        if videos:
            kwargs["videos"] = [v.frames for v in videos]
            kwargs["videos_kwargs"] = {
                "size": {"shortest_edge": ms.frame_min_pixels, "longest_edge": ms.frame_max_pixels},
                "do_sample_frames": False,
                "video_metadata": [VideoMetadata(total_num_frames=len(v.frames), fps=v.fps,
                                                 frames_indices=list(range(len(v.frames)))) for v in videos],
            }
        batch = self.processor(text=prompts, padding=True, return_tensors="pt", **kwargs)
        return batch.to(self.device)

    def collate(self, items: Sequence[EmbedInput]):  # noqa: ANN201
        """Processor outputs for a batch (tensors on the model's device)."""
        return self._process([self._prepare(it) for it in items])

    def forward(self, batch) -> torch.Tensor:  # noqa: ANN001
        """Pooled, L2-normalised embeddings of a collated batch (keeps gradients)."""
        inputs = {k: v for k, v in batch.items() if k != "mm_token_type_ids" or "mm_token_type_ids" in batch}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        if "pixel_values_videos" in inputs:
            inputs["pixel_values_videos"] = inputs["pixel_values_videos"].to(self.dtype)
        out = self._backbone()(**inputs, use_cache=False)
        pooled = pool_last(out.last_hidden_state, batch["attention_mask"])
        return F.normalize(pooled.float(), dim=-1)

    # --- inference ---------------------------------------------------------------------------
    def embed(self, items: Sequence[EmbedInput], batch_size: int | None = None, progress: bool = False,
              bucket: bool = True) -> np.ndarray:
        """Unit vectors ``(N, dim)`` float32, in input order; batches are length-bucketed (``bucket``)
        so that a batch pads to similar lengths."""
        ms = self.settings.model
        batch_size = batch_size or ms.batch_size
        if not items:
            return np.zeros((0, self.dim), np.float32)
        prepared = [self._prepare(it) for it in items]
        order = sorted(range(len(items)), key=lambda i: prepared[i][3]) if bucket else list(range(len(items)))
        out = np.zeros((len(items), self.dim), np.float32)
        batches: list[list[int]] = []
        current: list[int] = []
        for i in order:
            longest = max([prepared[j][3] for j in current] + [prepared[i][3]])
            if current and (len(current) >= batch_size or longest * (len(current) + 1) > ms.max_batch_tokens):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        iterator = batches
        if progress:
            from rich.progress import track

            iterator = track(batches, description="embedding")
        with torch.inference_mode():
            for idx in iterator:
                vecs = self.forward(self._process([prepared[i] for i in idx]))
                out[idx] = vecs.cpu().numpy()
        return out

    def embed_one(self, item: EmbedInput) -> np.ndarray:
        return self.embed([item])[0]


def cache_key(embedder: Embedder, item: EmbedInput) -> str:
    return f"{embedder.model_id}:{item_key(item)}"


def describe_model(path: str) -> dict[str, Any]:
    cfg = json.loads((Path(path) / "config.json").read_text())
    return {"path": path, "architectures": cfg.get("architectures"), "hidden_size": cfg.get("text_config", {}).get("hidden_size")}
