"""The caption step's cross-modal consistency filter (SPEC §3.2): a clip whose concise caption
does not match its frames under the embedder stops being kept."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from services.synth import objects
from shared import layout
from shared.config import get_settings
from shared.db import session_scope
from shared.db.models import Clip
from shared.storage import get_store


@lru_cache(maxsize=1)
def _embedder():  # noqa: ANN202 - one model per worker process
    from shared.model import Embedder

    return Embedder.from_settings()


def consistency_filter(
    clips: Sequence[Clip], captions: dict[str, str], threshold: float
) -> list[str]:
    """The embedder's similarity between a clip's concise caption (as a T2V query) and its stored
    frames. Every score is recorded on the clip; clips below ``threshold`` stop being kept, with
    the reason. Returns the ids of the clips dropped."""
    from shared.model import TASK_INSTRUCTIONS, EmbedInput, VideoFrames

    n = get_settings().synth.frames_per_clip
    scored = [c for c in clips if c.id in captions]
    emb = _embedder()
    q = emb.embed(
        [EmbedInput(text=captions[c.id], instruction=TASK_INSTRUCTIONS["T2V"]) for c in scored]
    )
    v = emb.embed(
        [
            EmbedInput(video=VideoFrames(layout.frame_keys(c.id, n), fps=objects.clip_fps(c, n)))
            for c in scored
        ]
    )
    dropped = []
    with session_scope() as db:
        for clip, sim in zip(scored, (q * v).sum(axis=1), strict=True):
            row = db.get_one(Clip, clip.id)
            row.filter_scores = {**(row.filter_scores or {}), "consistency": round(float(sim), 4)}
            if sim < threshold:
                row.kept = False
                row.reject_reason = (
                    f"caption does not match the clip (consistency {sim:.3f} < {threshold})"
                )
                dropped.append(clip.id)
    objects.remove_objects(get_store(), dropped)
    return dropped
