"""The cross-modal consistency filter (SPEC §3.2, filter 2 of 3): the RAW caption of a video is
scored against each of its clips before any captioning request, and clips below the threshold stop
being kept (with the reason; their objects go). Two scorers: the embedder (caption as a T2V query
against the clip's stored frames) and, for procedural videos, the ground truth of their sidecar."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

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


def embedder_scores(clips: Sequence[Clip], captions: dict[str, str]) -> dict[str, float]:
    """The embedder's similarity between each clip's caption (as a T2V query) and its frames."""
    from shared.model import TASK_INSTRUCTIONS, EmbedInput, VideoFrames

    n = get_settings().synth.frames_per_clip
    scored = [c for c in clips if c.id in captions]
    if not scored:
        return {}
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
    return {c.id: float(s) for c, s in zip(scored, (q * v).sum(axis=1), strict=True)}


def truth_score(caption: str, sidecar: dict[str, Any]) -> float:
    """The fraction of the colours and shapes a caption names that the procedural video's sidecar
    holds (1.0 when it names none): a caption written for another video scores low."""
    from shared.world.vocab import COLORS, SHAPES

    objs = [o for shot in sidecar["shots"] for o in shot["objects"]]
    present = {o["color"] for o in objs} | {o["color_after"] for o in objs if o.get("color_after")}
    shapes = {o["shape"] for o in objs}
    words = set(caption.lower().replace(",", " ").replace(".", " ").split())
    named = (words & set(COLORS)) | (words & set(SHAPES))
    if not named:
        return 1.0
    return len((words & set(COLORS) & present) | (words & set(SHAPES) & shapes)) / len(named)


def raw_caption_scores(
    clips: Sequence[Clip], raw: str, sidecar: dict[str, Any] | None, scorer: str
) -> tuple[dict[str, float], str]:
    """Each clip's consistency with the video's raw caption, and the scorer that gave them."""
    use = scorer if scorer != "auto" else ("truth" if sidecar else "embedder")
    if use == "truth":
        if not sidecar:
            raise ValueError("the truth consistency scorer needs a procedural video's sidecar")
        score = truth_score(raw, sidecar)
        return {c.id: score for c in clips}, use
    return embedder_scores(clips, {c.id: raw for c in clips}), use


def drop_inconsistent(
    clips: Sequence[Clip], scores: dict[str, float], threshold: float, what: str = "caption"
) -> list[str]:
    """Record every score on its clip; clips below ``threshold`` stop being kept, with the reason,
    and their objects leave the store. Returns the ids of the clips dropped."""
    dropped = []
    with session_scope() as db:
        for clip in clips:
            if clip.id not in scores:
                continue
            sim = scores[clip.id]
            row = db.get_one(Clip, clip.id)
            row.filter_scores = {**(row.filter_scores or {}), "consistency": round(sim, 4)}
            if sim < threshold:
                row.kept = False
                row.reject_reason = (
                    f"{what} does not match the clip (consistency {sim:.3f} < {threshold})"
                )
                dropped.append(clip.id)
    objects.remove_objects(get_store(), dropped)
    return dropped


def consistency_filter(
    clips: Sequence[Clip], captions: dict[str, str], threshold: float
) -> list[str]:
    """The embedder's consistency of each clip with its caption, recorded; the clips below
    ``threshold`` dropped. Returns the ids of the clips dropped."""
    return drop_inconsistent(clips, embedder_scores(clips, captions), threshold)
