"""The ``template`` captioner: no model. The five caption styles, the keyframe's caption, the
composed-query texts (with the strategy and relation they follow) from the source's ground-truth
sidecar when there is one (``shared.world.describe``), else from the raw caption. The embedded
default."""

from __future__ import annotations

import random
import re

from services.synth import prompts
from services.synth.captioner import ClipCaptions, ClipContext, pick_profile, rectify
from shared.config import CaptionSettings

# what the template writes for a composed query: the strategy and relation that describe it
TEMPLATE_STRATEGY = "action_change"
TEMPLATE_RELATION = "continuation"


class TemplateCaptioner:
    name = "template"

    def __init__(self, settings: CaptionSettings, profile_weights: dict[str, float]):
        self.profile_weights = profile_weights

    def caption(self, ctx: ClipContext, rng: random.Random) -> ClipCaptions:
        profile = pick_profile(rng, self.profile_weights)
        if ctx.sidecar:
            video, frame, composed_image, composed_video = _from_sidecar(ctx, profile, rng)
        else:
            video, frame, composed_image, composed_video = _from_raw(ctx.raw_caption)
        return ClipCaptions(
            video=video,
            frame={"concise": frame},
            composed_image=composed_image,
            composed_video=composed_video,
            info_profile=profile,
            model="template",
            prompt_versions={n: prompts.load(n).version for n in prompts.PROMPT_NAMES},
            request_ids=[],
            strategy=TEMPLATE_STRATEGY,
            relation=TEMPLATE_RELATION,
        )


def _from_sidecar(ctx: ClipContext, profile: str, rng: random.Random):  # noqa: ANN202
    from shared.world.describe import composed_change, describe, describe_frame

    side = ctx.sidecar
    assert side is not None
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
    return video, frame, composed_image, composed_video


def _from_raw(raw_caption: str):  # noqa: ANN202
    raw = rectify(raw_caption) or "a video"
    words = re.findall(r"[A-Za-z]+", raw)
    video = {
        "concise": " ".join(words[:25]) or raw,
        "rich": raw,
        "abstract": f"a video about {' '.join(words[:8])}",
        "keywords": ", ".join(dict.fromkeys(w.lower() for w in words if len(w) > 3)) or raw,
        "partial": " ".join(words[: max(3, len(words) // 3)]) or raw,
    }
    frame = f"a still frame of {' '.join(words[:12])}"
    composed_image = f"the scene from the reference image, continuing: {' '.join(words[:12])}"
    composed_video = f"what happens next after this clip: {' '.join(words[:12])}"
    return video, frame, composed_image, composed_video
