"""Captioning (SPEC §3.3–3.4) behind one interface with two back ends:

- ``template``: no model. Builds the five caption styles, frame captions and composed-query texts
  from the source's ground-truth sidecar when there is one (``shared.world.describe``), else from
  the raw caption (all styles then derive from it). The embedded default.
- ``openai``: any OpenAI-compatible server (vLLM in compose) with the paper's prompts, sending
  ``caption.frames_per_request`` frames as ``image_url`` parts (vLLM's ``--limit-mm-per-prompt``
  image limit must be at least that; compose sets them equal), structured JSON output through
  vLLM's ``structured_outputs: {"json": schema}`` request field (vLLM >= 0.12; the ``guided_*``
  fields are gone there) validated with pydantic, bounded retries, a request id per call, and the
  caption↔clip mapping asserted (the reply must echo the clip id it was sent).
"""

from __future__ import annotations

import base64
import io
import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from shared.config import CaptionSettings

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionContentPartParam

VIDEO_STYLES = ("concise", "rich", "abstract", "keywords", "partial")
PROMPT_VERSION = "vsynflow-v1"


class CaptionError(RuntimeError):
    """Captioning failed for good (after retries); the message is the recorded reason."""


@dataclass
class ClipContext:
    clip_id: str
    frames: list[np.ndarray]  # the clip's 8 frames
    keyframe: np.ndarray
    keyframe_t: float  # seconds from the clip start
    raw_caption: str
    sidecar: dict[str, Any] | None  # ground truth of the clip span, if the source has it
    next_sidecar: dict[str, Any] | None = None  # the following clip (for text+video queries)


@dataclass
class ClipCaptions:
    video: dict[str, str]  # style → caption
    frame: str  # caption of the keyframe
    composed_image: str  # query text for (keyframe + text → clip)
    composed_video: str  # query text for (this clip + text → next clip)
    info_profile: str
    model: str
    prompt_version: str
    request_ids: list[str]


class Captioner(Protocol):
    name: str

    def caption(self, ctx: ClipContext, rng: random.Random) -> ClipCaptions: ...


def pick_profile(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


class TemplateCaptioner:
    name = "template"

    def __init__(self, settings: CaptionSettings, profile_weights: dict[str, float]):
        self.profile_weights = profile_weights

    def caption(self, ctx: ClipContext, rng: random.Random) -> ClipCaptions:
        profile = pick_profile(rng, self.profile_weights)
        if ctx.sidecar:
            from shared.world.describe import composed_change, describe, describe_frame

            side = ctx.sidecar
            rich_style = {"spatial": "spatial", "temporal": "temporal"}.get(profile, "rich")
            video = {
                "concise": describe(side, "concise", rng),
                "rich": describe(side, rich_style, rng),
                "abstract": describe(side, "abstract", rng),
                "keywords": describe(side, "keywords", rng),
                "partial": describe(side, "partial", rng),
            }
            frame = describe_frame(side, ctx.keyframe_t)
            composed_image = composed_change(side, ctx.keyframe_t, "image")
            composed_video = (
                composed_change(
                    dict(side, shots=side["shots"] + (ctx.next_sidecar or side)["shots"]),
                    side["duration_s"] - 1e-3,
                    "video",
                )
                if ctx.next_sidecar
                else composed_change(side, 0.0, "video")
            )
        else:
            raw = rectify(ctx.raw_caption) or "a video"
            words = re.findall(r"[A-Za-z]+", raw)
            video = {
                "concise": " ".join(words[:25]) or raw,
                "rich": raw,
                "abstract": f"a video about {' '.join(words[:8])}",
                "keywords": ", ".join(dict.fromkeys(w.lower() for w in words if len(w) > 3)) or raw,
                "partial": " ".join(words[: max(3, len(words) // 3)]) or raw,
            }
            frame = f"a still frame of {' '.join(words[:12])}"
            composed_image = (
                f"the scene from the reference image, continuing: {' '.join(words[:12])}"
            )
            composed_video = f"what happens next after this clip: {' '.join(words[:12])}"
        return ClipCaptions(
            video=video,
            frame=frame,
            composed_image=composed_image,
            composed_video=composed_video,
            info_profile=profile,
            model="template",
            prompt_version=PROMPT_VERSION,
            request_ids=[],
        )


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


# --- the openai back end -------------------------------------------------------------------------

VIDEO_PROMPT = """You are given {n} frames sampled in order from a short video clip (clip id: {clip_id}) and its original web caption: "{raw_caption}".
Analyse the video frame by frame and write FIVE English captions about what is visible or reasonably inferable; never invent elements and never mention what is absent.
Information profile for this request: {profile} (spatial: objects, attributes, positions; temporal: order of events, motion; other: theme, style, camera).
Mix per caption: spatial detail 30-60%, temporal flow 30-60%, theme/style/camera 0-20%, other 0-10%.
Styles: "1" a concise punchy summary (10-25 words); "2" a spatio-temporally rich description (80-200 words); "3" an abstract understanding (30-100 words); "4" keywords only (5-30 words); "5" partially relevant information about one part only (10-70 words).
At least one caption under 20 words and one over 100. Readability: {readability}; audience: {education_level}.
Also write "frame": a caption of the LAST frame alone (spatial 50-70%, no tense implying sequence); "composed_image": a query of at most 50 words, present continuous, that binds to the last frame ("the X from the reference image") and describes what the video shows beyond that still image; "composed_video": a 5-15 word query that, given this clip as reference, asks for what happens next.
Answer with JSON only, echoing "clip_id"."""  # noqa: E501 (a template: its lines are the output's)


class CaptionReply(BaseModel):
    clip_id: str
    c1: str = Field(alias="1", min_length=3)
    c2: str = Field(alias="2", min_length=3)
    c3: str = Field(alias="3", min_length=3)
    c4: str = Field(alias="4", min_length=3)
    c5: str = Field(alias="5", min_length=3)
    frame: str = Field(min_length=3)
    composed_image: str = Field(min_length=3)
    composed_video: str = Field(min_length=3)


def _json_schema() -> dict[str, Any]:
    keys = ("clip_id", "1", "2", "3", "4", "5", "frame", "composed_image", "composed_video")
    props = {k: {"type": "string"} for k in keys}
    return {
        "type": "object",
        "properties": props,
        "required": list(props),
        "additionalProperties": False,
    }


def pick_frames(frames: list[np.ndarray], limit: int) -> list[np.ndarray]:
    """At most ``limit`` frames, evenly spread over the clip in order (the last frame kept: the
    prompt's "frame" caption is about it)."""
    if limit < 1:
        raise ValueError(f"caption.frames_per_request must be >= 1, got {limit}")
    if len(frames) <= limit:
        return list(frames)
    if limit == 1:
        return [frames[-1]]
    idx = np.linspace(0, len(frames) - 1, limit).round().astype(int)
    return [frames[i] for i in idx]


def _data_url(frame: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


class OpenAICaptioner:
    name = "openai"

    def __init__(self, settings: CaptionSettings, profile_weights: dict[str, float]):
        from openai import OpenAI

        self.settings = settings
        self.profile_weights = profile_weights
        self.client = OpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key.get_secret_value(),
            timeout=settings.timeout_s,
            max_retries=0,
        )

    def _request(self, ctx: ClipContext, profile: str, request_id: str) -> CaptionReply:
        frames = pick_frames(ctx.frames, self.settings.frames_per_request)
        prompt = VIDEO_PROMPT.format(
            n=len(frames),
            clip_id=ctx.clip_id,
            raw_caption=ctx.raw_caption.replace('"', "'"),
            profile=profile,
            readability="plain",
            education_level="general audience",
        )
        content: list[ChatCompletionContentPartParam] = [
            {"type": "image_url", "image_url": {"url": _data_url(f)}} for f in frames
        ]
        content.append({"type": "text", "text": prompt})
        resp = self.client.chat.completions.create(
            model=self.settings.model,
            messages=[{"role": "user", "content": content}],
            temperature=0.7,
            extra_body={"structured_outputs": {"json": _json_schema()}},
            extra_headers={"X-Request-Id": request_id},
        )
        text = resp.choices[0].message.content or ""
        reply = CaptionReply.model_validate_json(text)
        if reply.clip_id != ctx.clip_id:
            raise CaptionMismatch(
                f"reply for clip {reply.clip_id!r} arrived for clip {ctx.clip_id!r}"
            )
        return reply

    def caption(self, ctx: ClipContext, rng: random.Random) -> ClipCaptions:
        from openai import APIConnectionError, APIStatusError, APITimeoutError
        from tenacity import (
            RetryError,
            retry,
            retry_if_exception_type,
            stop_after_attempt,
            wait_exponential,
        )

        profile = pick_profile(rng, self.profile_weights)
        request_ids: list[str] = []

        @retry(
            retry=retry_if_exception_type(
                (
                    APIConnectionError,
                    APITimeoutError,
                    APIStatusError,
                    ValidationError,
                    ValueError,
                    CaptionMismatch,
                )
            ),
            stop=stop_after_attempt(self.settings.max_retries + 1),
            wait=wait_exponential(multiplier=0.1, max=2),
        )
        def attempt() -> CaptionReply:
            rid = f"{ctx.clip_id}:{len(request_ids)}"
            request_ids.append(rid)
            return self._request(ctx, profile, rid)

        try:
            reply = attempt()
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise CaptionError(
                f"captioner failed after {len(request_ids)} attempts"
                f": {type(last).__name__}: {str(last)[:200]}"
            ) from last
        return ClipCaptions(
            video=dict(
                zip(VIDEO_STYLES, (reply.c1, reply.c2, reply.c3, reply.c4, reply.c5), strict=True)
            ),
            frame=reply.frame,
            composed_image=reply.composed_image,
            composed_video=reply.composed_video,
            info_profile=profile,
            model=self.settings.model,
            prompt_version=PROMPT_VERSION,
            request_ids=request_ids,
        )


class CaptionMismatch(ValueError):
    """A reply that belongs to another clip."""


def make_captioner(settings: CaptionSettings, profile_weights: dict[str, float]) -> Captioner:
    if settings.backend == "openai":
        return OpenAICaptioner(settings, profile_weights)
    return TemplateCaptioner(settings, profile_weights)
