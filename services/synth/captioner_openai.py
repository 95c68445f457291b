"""The ``openai`` captioner: any OpenAI-compatible server (vLLM in compose) asked the paper's
prompts (``services.synth.prompts``, one request per prompt: the video's five captions, the
keyframe's five captions, the TI2V query under a sampled strategy, the TV2V query under a sampled
relation). Frames go as ``image_url`` parts (at most ``caption.frames_per_request`` per request:
vLLM's ``--limit-mm-per-prompt``; compose sets them equal); the reply's JSON schema is sent through
vLLM's ``structured_outputs: {"json": schema}`` field (vLLM >= 0.12; the ``guided_*`` fields are
gone there) and checked again here with ``jsonschema``; bounded retries, a request id per call,
and the caption↔clip mapping asserted (the reply must echo the clip id it was sent)."""

from __future__ import annotations

import base64
import io
import json
import random
from typing import TYPE_CHECKING, Any

import numpy as np

from services.synth import prompts
from services.synth.captioner import (
    VIDEO_STYLES,
    CaptionError,
    ClipCaptions,
    ClipContext,
    pick_profile,
)
from shared.config import CaptionSettings

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionContentPartParam


class CaptionMismatch(ValueError):
    """A reply that belongs to another clip, or that does not follow the choice it was given."""


def pick_frames(frames: list[np.ndarray], limit: int) -> list[np.ndarray]:
    """At most ``limit`` frames, evenly spread over the clip in order, first and last kept."""
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


def _images(p: prompts.Prompt, ctx: ClipContext, limit: int) -> tuple[list[np.ndarray], dict]:
    """The images a prompt is shown (its ``images`` field) and the counts its template names."""
    if p.images == "clip":
        frames = pick_frames(ctx.frames, limit)
        return frames, {"n": len(frames)}
    if p.images == "keyframe":
        return [ctx.keyframe], {"n": 1}
    if p.images == "keyframe_then_clip":
        frames = pick_frames(ctx.frames, max(limit - 1, 1))
        return [ctx.keyframe, *frames], {"n": len(frames)}
    if p.images == "reference_then_target":
        target = ctx.target_frames or ctx.frames
        n_ref = max(limit // 2, 1)
        ref, tgt = pick_frames(ctx.frames, n_ref), pick_frames(target, max(limit - n_ref, 1))
        return [*ref, *tgt], {"n_ref": len(ref), "n": len(tgt)}
    raise ValueError(f"prompt {p.name}: unknown images {p.images!r}")


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

    def _request(
        self, p: prompts.Prompt, ctx: ClipContext, values: dict[str, Any], request_id: str
    ) -> dict[str, Any]:
        images, counts = _images(p, ctx, self.settings.frames_per_request)
        text = p.render(
            clip_id=ctx.clip_id,
            raw_caption=ctx.raw_caption.replace('"', "'"),
            readability="plain",
            education_level="general audience",
            **counts,
            **values,
        )
        content: list[ChatCompletionContentPartParam] = [
            {"type": "image_url", "image_url": {"url": _data_url(f)}} for f in images
        ]
        content.append({"type": "text", "text": text})
        resp = self.client.chat.completions.create(
            model=self.settings.model,
            messages=[{"role": "user", "content": content}],
            temperature=0.7,
            extra_body={"structured_outputs": {"json": p.schema}},
            extra_headers={"X-Request-Id": request_id},
        )
        reply = json.loads(resp.choices[0].message.content or "")
        p.validate(reply)
        if reply["clip_id"] != ctx.clip_id:
            raise CaptionMismatch(
                f"reply for clip {reply['clip_id']!r} arrived for clip {ctx.clip_id!r}"
            )
        for key in ("strategy", "relation"):
            if key in reply and reply[key] != values.get("choice"):
                want = values.get("choice")
                raise CaptionMismatch(f"asked for {key} {want!r}, got {reply[key]!r}")
        return reply

    def _ask(
        self, name: str, ctx: ClipContext, values: dict[str, Any], request_ids: list[str]
    ) -> dict[str, Any]:
        import jsonschema
        from openai import APIConnectionError, APIStatusError, APITimeoutError
        from tenacity import (
            RetryError,
            retry,
            retry_if_exception_type,
            stop_after_attempt,
            wait_exponential,
        )

        p = prompts.load(name)
        tries: list[str] = []

        @retry(
            retry=retry_if_exception_type(
                (
                    APIConnectionError,
                    APITimeoutError,
                    APIStatusError,
                    jsonschema.ValidationError,
                    ValueError,  # malformed JSON, CaptionMismatch
                )
            ),
            stop=stop_after_attempt(self.settings.max_retries + 1),
            wait=wait_exponential(multiplier=0.1, max=2),
        )
        def attempt() -> dict[str, Any]:
            rid = f"{ctx.clip_id}:{name}:{len(tries)}"
            tries.append(rid)
            request_ids.append(rid)
            return self._request(p, ctx, values, rid)

        try:
            return attempt()
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise CaptionError(
                f"captioner failed after {len(tries)} attempts at {name}: "
                f"{type(last).__name__}: {str(last)[:200]}"
            ) from last

    def caption(self, ctx: ClipContext, rng: random.Random) -> ClipCaptions:
        profile = pick_profile(rng, self.profile_weights)
        strategy = rng.choice(prompts.load("composed_image").choices)
        relation = rng.choice(prompts.load("composed_video").choices)
        ids: list[str] = []
        video = self._ask("video_caption", ctx, {"profile": profile}, ids)
        frame = self._ask("frame_caption", ctx, {}, ids)
        ti2v = self._ask("composed_image", ctx, {"choice": strategy}, ids)
        tv2v = self._ask("composed_video", ctx, {"choice": relation}, ids)
        keys = ("1", "2", "3", "4", "5")
        return ClipCaptions(
            video={s: video[k] for s, k in zip(VIDEO_STYLES, keys, strict=True)},
            frame={s: frame[k] for s, k in zip(VIDEO_STYLES, keys, strict=True)},
            composed_image=ti2v["query"],
            composed_video=tv2v["query"],
            info_profile=profile,
            model=self.settings.model,
            prompt_versions={n: prompts.load(n).version for n in prompts.PROMPT_NAMES},
            request_ids=ids,
            strategy=strategy,
            relation=relation,
        )
