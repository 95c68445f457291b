"""Captioning (SPEC §3.3–3.4) behind one interface: what a captioner is given (``ClipContext``),
what it returns (``ClipCaptions``), the raw caption's rectification, and the choice of back end:

- ``template`` (``captioner_template``): no model, text from the ground-truth sidecar or the raw
  caption; the embedded default;
- ``openai`` (``captioner_openai``): an OpenAI-compatible server (vLLM) asked the paper's prompts,
  which live as data in ``services/synth/prompts/`` (one versioned YAML per prompt, with the JSON
  schema of its reply).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from shared.config import CaptionSettings

VIDEO_STYLES = ("concise", "rich", "abstract", "keywords", "partial")
# the Caption row style of each frame-caption style ("frame" is the one T2I pairs use)
FRAME_STYLES = {
    "concise": "frame",
    "rich": "frame_rich",
    "abstract": "frame_abstract",
    "keywords": "frame_keywords",
    "partial": "frame_partial",
}


class CaptionError(RuntimeError):
    """Captioning failed for good (after retries); the message is the recorded reason."""


@dataclass
class ClipContext:
    clip_id: str
    frames: list[np.ndarray]  # the clip's stored frames
    keyframe: np.ndarray  # the stored keyframe: the very image the T2I and TI2V pairs use
    keyframe_t: float  # seconds from the clip start
    raw_caption: str
    sidecar: dict[str, Any] | None  # ground truth of the clip span, if the source has it
    next_sidecar: dict[str, Any] | None = None  # the following clip (for text+video queries)
    target_frames: list[np.ndarray] | None = None  # the TV2V target: the whole video


@dataclass
class ClipCaptions:
    video: dict[str, str]  # style → caption
    frame: dict[str, str]  # style → caption of the keyframe
    composed_image: str  # query text for (keyframe + text → its video)
    composed_video: str  # query text for (this clip + text → the TV2V target)
    info_profile: str
    model: str
    prompt_versions: dict[str, str]  # prompt name → version of the prompt that wrote it
    request_ids: list[str]
    strategy: str = ""  # the TI2V strategy the composed_image query follows
    relation: str = ""  # the TV2V relation the composed_video query follows
    extra: dict[str, Any] = field(default_factory=dict)


class Captioner(Protocol):
    name: str

    def caption(self, ctx: ClipContext, rng: random.Random) -> ClipCaptions: ...


def pick_profile(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


_JUNK = re.compile(
    r"^(img|vid|dsc|mov|video|untitled|download)[\s_\-()0-9]*(\.\w{2,4})?$|^(#\w+\s*)+$", re.I
)


def rectify(caption: str | None) -> str:
    """Annotation rectification (SPEC §3.2): drop captions that cannot describe content (empty, file
    names, bare hashtags, fewer than three words). Returns '' for a rejected caption."""
    text = (caption or "").strip()
    if not text or _JUNK.match(text) or len(re.findall(r"[A-Za-z]{2,}", text)) < 3:
        return ""
    return text


def make_captioner(settings: CaptionSettings, profile_weights: dict[str, float]) -> Captioner:
    if settings.backend == "openai":
        from services.synth.captioner_openai import OpenAICaptioner

        return OpenAICaptioner(settings, profile_weights)
    from services.synth.captioner_template import TemplateCaptioner

    return TemplateCaptioner(settings, profile_weights)
