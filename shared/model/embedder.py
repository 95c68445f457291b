"""The GVE embedder: any Qwen2.5-VL or Qwen2-VL checkpoint (the tiny bundles, Qwen2.5-VL-3B/7B,
GVE-3B/7B, GME-2B/7B) plus an optional LoRA adapter turns text, images, videos and their
compositions into unit vectors exactly as SPEC §6.3 describes: chat-template prompt with the
instruction in the system turn for queries, visual placeholders then text, an appended
``<|endoftext|>`` that is pooled from the last hidden layer (left or right padding), L2-normalised.

Size: one class (loading, prompts, batching plan, pooled forward pass) whose parts share its
processor and model.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from shared.config import Settings, get_settings
from shared.media import MediaError
from shared.model.inputs import EmbedInput
from shared.model.prompts import build_prompt
from shared.model.visual import (
    FrameCache,
    PixelBudget,
    PreparedVideo,
    VideoBudget,
    image_tokens_estimate,
    resolve_image,
    resolve_video,
    video_tokens_estimate,
)


@dataclass
class Prepared:
    """One input ready for the processor: the prompt string and the resolved pixels."""

    prompt: str
    image: Any  # PIL image or None
    video: PreparedVideo | None
    length: int  # tokens, visual tokens and EOD included


# config.json's model_type -> the transformers class that loads it (SPEC §6.3: the stock class)
MODEL_CLASSES = {
    "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
    "qwen2_vl": "Qwen2VLForConditionalGeneration",
}


def model_class(name_or_path: str) -> type[Any]:
    """The transformers class for a checkpoint, chosen by its config's ``model_type``."""
    import transformers
    from transformers import AutoConfig

    model_type = AutoConfig.from_pretrained(name_or_path).model_type
    if model_type not in MODEL_CLASSES:
        raise ValueError(
            f"{name_or_path}: model_type {model_type!r} is not supported; "
            f"the embedder loads {', '.join(sorted(MODEL_CLASSES))}"
        )
    return getattr(transformers, MODEL_CLASSES[model_type])


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def pick_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if name not in dtypes:
        raise ValueError(f"unknown dtype {name!r}; use auto, {', '.join(dtypes)}")
    return dtypes[name]


def pool_last(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The hidden state of the last attended token, whatever the padding side."""
    if bool((attention_mask[:, -1] == 1).all()):
        return hidden[:, -1]
    last = attention_mask.sum(dim=1) - 1
    return hidden[torch.arange(hidden.size(0), device=hidden.device), last]


_SAMPLE_BYTES = 1 << 20  # large weight files are fingerprinted by size + their first and last MiB


def _fingerprint(path: str) -> str:
    """Content hash of a checkpoint/adapter folder's config and weights; for a hub id, of its name
    (a revision pinned in the id is part of the name)."""
    h = hashlib.sha256()
    p = Path(path)
    if not p.exists():
        h.update(path.encode())
        return h.hexdigest()[:16]
    files = [p] if p.is_file() else sorted(f for f in p.iterdir() if f.is_file())
    for f in files:
        if f.suffix not in {".json", ".safetensors", ".bin"}:
            continue
        size = f.stat().st_size
        h.update(f"{f.name}:{size}".encode())
        with open(f, "rb") as fh:
            if size <= 2 * _SAMPLE_BYTES:
                h.update(fh.read())
            else:
                h.update(fh.read(_SAMPLE_BYTES))
                fh.seek(size - _SAMPLE_BYTES)
                h.update(fh.read())
    return h.hexdigest()[:16]


_NAME_CHARS = 32  # the readable part of a model_id; the hash after it carries the identity


def _safe_name(name_or_path: str) -> str:
    """The last path part (a hub id's repo name), reduced to characters safe in file and collection
    names."""
    name = Path(name_or_path.rstrip("/")).name or "model"
    return re.sub(r"[^A-Za-z0-9_.-]", "-", name)[:_NAME_CHARS]


class Embedder:
    """Embeds ``EmbedInput``s. ``embed`` is for inference; ``collate`` + ``forward`` keep gradients
    for the trainer, which wraps ``self.model`` with LoRA."""

    def __init__(
        self,
        name_or_path: str | Path | None = None,
        adapter: str | Path | None = None,
        *,
        device: str | None = None,
        dtype: str | None = None,
        settings: Settings | None = None,
    ):
        from transformers import AutoProcessor

        self.settings = settings or get_settings()
        ms = self.settings.model
        if not name_or_path:
            name_or_path = ms.name_or_path
        if not name_or_path:
            from shared.model.tiny import ensure_tiny_bundle

            name_or_path = ensure_tiny_bundle(self.settings)
        self.name_or_path = str(name_or_path)
        self.adapter = str(adapter) if adapter else None
        if ms.torch_threads:
            from shared.threads import configure_torch_threads

            configure_torch_threads(settings=self.settings)
        self.device = pick_device(device or ms.device)
        self.dtype = pick_dtype(dtype or ms.dtype, self.device)
        self.processor = AutoProcessor.from_pretrained(self.name_or_path)
        self.processor.tokenizer.padding_side = ms.padding_side
        self.model = model_class(self.name_or_path).from_pretrained(
            self.name_or_path, dtype=self.dtype
        )
        if self.adapter:
            from peft import PeftModel

            self.model = PeftModel.from_pretrained(self.model, self.adapter)
        self.model.to(self.device).eval()
        self.cache = FrameCache(ms.frame_cache_items)
        self.eod_id = self.processor.tokenizer.convert_tokens_to_ids("<|endoftext|>")
        self._overhead = len(
            self.processor.tokenizer(build_prompt("", video=True, image=True))["input_ids"]
        )
        self._model_id: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Embedder:
        s = settings or get_settings()
        return cls(s.model.name_or_path or None, s.model.adapter, settings=s)

    # --- identity ----------------------------------------------------------------------------
    def _identity_parts(self) -> tuple:
        ms = self.settings.model
        video, image = self._budgets()
        recipe = (str(self.dtype), ms.num_frames, ms.fps, video, image, ms.max_length)
        return (
            _fingerprint(self.name_or_path),
            _fingerprint(self.adapter) if self.adapter else "",
            recipe,
        )

    @property
    def identity(self) -> dict[str, str]:
        """What ``model_id`` hashes, readable: the base's and the adapter's content fingerprints
        (with their paths) and the input recipe. The indexer logs it, so two builds that chose
        different collections say why."""
        base, adapter, recipe = self._identity_parts()
        return {
            "base": f"{base} {self.name_or_path}",
            "adapter": f"{adapter} {self.adapter}" if self.adapter else "",
            "recipe": repr(recipe),
        }

    @property
    def model_id(self) -> str:
        """``<name>-<hash>``: the hash covers the weights, the adapter and the input recipe (dtype,
        frames, pixel budgets, max length), so the id changes whenever the vectors would. Safe in
        paths and collection names (no "/", at most 49 characters)."""
        if self._model_id is None:
            digest = hashlib.sha256(repr(self._identity_parts()).encode()).hexdigest()[:16]
            self._model_id = f"{_safe_name(self.name_or_path)}-{digest}"
        return self._model_id

    @property
    def dim(self) -> int:
        cfg = (
            self.model.config
            if not hasattr(self.model, "get_base_model")
            else self.model.get_base_model().config
        )
        return cfg.text_config.hidden_size

    def _backbone(self) -> torch.nn.Module:
        m = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        return m.model

    # --- inputs ------------------------------------------------------------------------------
    def _budgets(self) -> tuple[VideoBudget, PixelBudget]:
        """Video sizing (the reference's limits from Settings, then the checkpoint processor's
        own) and the image limits (Settings where given, else the checkpoint processor's)."""
        ms = self.settings.model
        video_size = self.processor.video_processor.size
        image_size = self.processor.image_processor.size
        video = VideoBudget(
            ms.video_min_pixels,
            ms.video_max_pixels,
            ms.video_total_pixels,
            PixelBudget(video_size["shortest_edge"], video_size["longest_edge"]),
        )
        image = PixelBudget(
            ms.image_min_pixels or image_size["shortest_edge"],
            ms.image_max_pixels or image_size["longest_edge"],
        )
        return video, image

    def _estimate_cost(self, item: EmbedInput) -> int:
        """Approximate sequence length (tokens) without decoding anything: for length buckets."""
        ms = self.settings.model
        video_budget, image_budget = self._budgets()
        cost = self._overhead + (len(item.text or "") + len(item.instruction or "")) // 4
        if item.video is not None:
            cost += video_tokens_estimate(item.video, ms.num_frames, self.cache, video_budget)
        if item.image is not None:
            cost += image_tokens_estimate(item.image, image_budget)
        return min(cost, ms.max_length)

    def _prompt_tokens(self, prompt: str) -> int:
        return len(self.processor.tokenizer(prompt, add_special_tokens=False)["input_ids"])

    def _prepare(self, item: EmbedInput) -> Prepared:
        """Resolve the visual inputs and build the prompt, truncating only the text so the whole
        sequence (visual tokens and the EOD included) fits ``max_length``."""
        ms = self.settings.model
        video_budget, image_budget = self._budgets()
        video = (
            resolve_video(
                item.video, ms.num_frames, ms.fps, self.cache, video_budget, ms.seek_min_frames
            )
            if item.video is not None
            else None
        )
        image = resolve_image(item.image) if item.image is not None else None
        # each placeholder pad token expands to its visual tokens
        visual = (video.tokens() - 1 if video is not None else 0) + (
            image_budget.tokens(image.height, image.width) - 1 if image is not None else 0
        )
        kinds = {"image": image is not None, "video": video is not None}
        fixed = (
            self._prompt_tokens(build_prompt("", instruction=item.instruction, **kinds)) + visual
        )
        if fixed > ms.max_length:
            raise ValueError(
                f"visual tokens alone ({fixed} tokens with the prompt) exceed max_length "
                f"{ms.max_length}; lower the pixel budget "
                "(model.video_max_pixels/video_total_pixels/image_max_pixels)"
            )
        text = item.text
        prompt = build_prompt(text, instruction=item.instruction, **kinds)
        length = self._prompt_tokens(prompt) + visual
        if text and length > ms.max_length:
            ids = self.processor.tokenizer(text, add_special_tokens=False)["input_ids"]
            keep = len(ids) - (length - ms.max_length)
            while length > ms.max_length and keep > 0:  # re-tokenising a cut text can shift a token
                text = self.processor.tokenizer.decode(ids[:keep])
                prompt = build_prompt(text, instruction=item.instruction, **kinds)
                length = self._prompt_tokens(prompt) + visual
                keep -= max(1, length - ms.max_length)
            if length > ms.max_length:
                text = ""
                prompt = build_prompt(text, instruction=item.instruction, **kinds)
                length = self._prompt_tokens(prompt) + visual
        return Prepared(prompt, image, video, length)

    def _prepare_all(
        self, items: Sequence[EmbedInput], positions: Sequence[int] | None = None
    ) -> list[Prepared]:
        out = []
        for n, item in enumerate(items):
            try:
                out.append(self._prepare(item))
            except (MediaError, ValueError, TypeError) as exc:  # say which input failed
                where = positions[n] if positions is not None else n
                try:
                    named = type(exc)(f"input #{where}: {exc}")
                except Exception:  # noqa: BLE001 - an exception type with another signature
                    named = None
                if named is None:
                    raise  # as it came
                raise named from exc
        return out

    def _process(self, prepared: Sequence[Prepared]):  # noqa: ANN202
        from transformers.video_utils import VideoMetadata

        _, image_budget = self._budgets()
        prompts = [p.prompt for p in prepared]
        images = [p.image for p in prepared if p.image is not None]
        videos = [p.video for p in prepared if p.video is not None]
        kwargs: dict[str, Any] = {}
        if images:
            kwargs["images"] = images
            kwargs["images_kwargs"] = {
                "size": {
                    "shortest_edge": image_budget.min_pixels,
                    "longest_edge": image_budget.max_pixels,
                }
            }
        if videos:
            kwargs["videos"] = [v.frames for v in videos]
            # the frames are at the reference's size (VideoBudget.fit); the processor applies its
            # own limits on top, as it does to the reference's frames (no total cap of its own)
            kwargs["videos_kwargs"] = {
                "do_sample_frames": False,
                "cap_pixels_per_frame": False,
                "video_metadata": [
                    VideoMetadata(
                        total_num_frames=len(v.frames),
                        fps=v.fps,
                        frames_indices=list(range(len(v.frames))),
                    )
                    for v in videos
                ],
            }
        batch = self.processor(text=prompts, padding=True, return_tensors="pt", **kwargs)
        return batch.to(self.device)

    def collate(self, items: Sequence[EmbedInput]):  # noqa: ANN201
        """Processor outputs for a batch (tensors on the model's device)."""
        return self._process(self._prepare_all(items))

    def forward(self, batch) -> torch.Tensor:  # noqa: ANN001
        """Pooled, L2-normalised embeddings of a collated batch (keeps gradients)."""
        inputs = dict(batch.items())
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        if "pixel_values_videos" in inputs:
            inputs["pixel_values_videos"] = inputs["pixel_values_videos"].to(self.dtype)
        out = self._backbone()(**inputs, use_cache=False)
        pooled = pool_last(out.last_hidden_state, batch["attention_mask"])
        return F.normalize(pooled.float(), dim=-1)

    # --- inference ---------------------------------------------------------------------------
    def plan_batches(
        self, items: Sequence[EmbedInput], batch_size: int | None = None, bucket: bool = True
    ) -> list[list[int]]:
        """Batches of input positions: sorted by estimated length (``bucket``) or in arrival order,
        each at most ``batch_size`` inputs and ``model.max_batch_tokens`` padded tokens."""
        ms = self.settings.model
        batch_size = batch_size or ms.batch_size
        costs = [self._estimate_cost(it) for it in items]
        order = (
            sorted(range(len(items)), key=costs.__getitem__) if bucket else list(range(len(items)))
        )
        batches: list[list[int]] = []
        current: list[int] = []
        longest = 0
        for i in order:
            widest = max(longest, costs[i])
            if current and (
                len(current) >= batch_size or widest * (len(current) + 1) > ms.max_batch_tokens
            ):
                batches.append(current)
                current, widest = [], costs[i]
            current.append(i)
            longest = widest
        if current:
            batches.append(current)
        return batches

    def embed(
        self,
        items: Sequence[EmbedInput],
        batch_size: int | None = None,
        progress: bool = False,
        bucket: bool = True,
    ) -> np.ndarray:
        """Unit vectors ``(N, dim)`` float32, in input order. Inputs are decoded batch by batch
        (memory stays bounded by a batch); batches are length-bucketed unless ``bucket=False``."""
        if not items:
            return np.zeros((0, self.dim), np.float32)
        out = np.zeros((len(items), self.dim), np.float32)
        batches = self.plan_batches(items, batch_size, bucket)
        iterator: Iterable[list[int]] = batches
        if progress:
            from rich.progress import track

            iterator = track(batches, description="embedding")
        with torch.inference_mode():
            for idx in iterator:
                prepared = self._prepare_all([items[i] for i in idx], idx)
                out[idx] = self.forward(self._process(prepared)).cpu().numpy()
        return out

    def embed_one(self, item: EmbedInput) -> np.ndarray:
        return self.embed([item])[0]
