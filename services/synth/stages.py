"""The pipeline for one source video, three idempotent steps (deterministic IDs, upserts), each
in its own module:

1. ``media`` (``services.synth.media``, near-duplicates in ``dedup``, objects in ``objects``):
   probe, decode once, split, the temporal-dynamics filter (motion), near-duplicates, cut and
   store clips and frames;
2. ``caption`` (``services.synth.caption``, its filter in ``consistency``): the raw caption
   rectified, its cross-modal consistency with each kept clip (mismatches dropped before any
   captioning request), then captions of the clips left;
3. ``pairs`` (``services.synth.pairs``): retrieval pairs of the seven task types.

Filter order: the paper's is rectification → consistency → temporal dynamics (SPEC §3.2). Temporal
dynamics runs first here on purpose: its motion score comes free from the media step's one
decode pass, so a static clip is never cut, deduplicated, stored or embedded, while the
consistency scorer (the embedder) needs stored frames and runs on the caption workers. Each
filter judges each clip alone, so the clips kept are the paper's order's (README, "V-SynFlow:
stages and filters, in order").

A bad input raises ``Rejected`` with the reason a user reads; anything else is an error the task
retries (and fails for good after ``broker.max_attempts``). ``run_stage`` is what a task calls.
"""

from __future__ import annotations

from typing import Any

from services.synth.caption import caption_stage, check_raw_caption
from services.synth.consistency import _embedder, consistency_filter
from services.synth.errors import Rejected
from services.synth.media import _clip_candidate, _cut_clips, media_stage
from services.synth.objects import clip_fps, jpeg, remove_objects
from services.synth.pairs import DOMAIN_OF_STYLE, pairs_stage
from services.synth.sources import SourceItem
from shared.config import get_settings
from shared.layout import frame_keys, keyframe_key, video_frame_keys

STAGES = ("media", "caption", "pairs")

__all__ = [
    "DOMAIN_OF_STYLE",
    "STAGES",
    "Rejected",
    "SourceItem",
    "_clip_candidate",
    "_cut_clips",
    "_embedder",
    "caption_stage",
    "check_raw_caption",
    "clip_fps",
    "consistency_filter",
    "frame_keys",
    "get_settings",
    "jpeg",
    "keyframe_key",
    "media_stage",
    "pairs_stage",
    "remove_objects",
    "run_stage",
    "video_frame_keys",
]


def run_stage(stage: str, src: SourceItem, video_id: str, source_id: str | None) -> dict[str, Any]:
    """One step of one video, with its settings (the media step rejects a source marked bad)."""
    settings = get_settings()
    if stage == "download":  # web sources only (synth.io_download), before media
        from services.synth.download import download_stage

        if src.reject:
            raise Rejected(src.reject)
        return download_stage(src, video_id)
    if stage == "media":
        if src.reject:
            raise Rejected(src.reject)
        return media_stage(src, video_id, source_id)
    if stage == "caption":
        return caption_stage(video_id, seed=settings.model.seed)
    return pairs_stage(video_id, settings.synth.hard_negatives)


_jpeg = jpeg  # the name tests and benches knew
