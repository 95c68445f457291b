"""Step 3, ``pairs``: retrieval pairs of all seven task types with domain hints and hard
negatives, from a video's stored clips and their captions."""

from __future__ import annotations

import json
import random
from typing import Any

from sqlalchemy import select

from services.synth.captioner import FRAME_STYLES
from services.synth.objects import clip_fps
from shared import layout
from shared.config import get_settings
from shared.db import session_scope, upsert
from shared.db.models import Caption, Clip, Pair, Video, clip_stored
from shared.ids import stable_id
from shared.media.frames import sampling_fps

DOMAIN_OF_STYLE = {
    "concise": "coarse",
    "abstract": "coarse",
    "rich": "long",
    "keywords": "partial",
    "partial": "partial",
}
HARD_NEGATIVE_TASKS = ("T2V", "TI2V", "TV2V")
HARD_NEGATIVE_POOL = 256  # clips of other videos hard negatives are drawn from
_DESCRIPTIVE = ("fps", "video_id", "dedup_cluster")  # what a video ref says about its clip


def _video_ref(clip: Clip, n: int) -> dict[str, Any]:
    """A clip as a pair side: its frames, their rate, and the source video and dedup cluster it
    belongs to (a consumer groups a hard negative like a positive without rebuilding the
    mapping)."""
    return {
        "video": {
            "clip_id": clip.id,
            "frames": layout.frame_keys(clip.id, n),
            "fps": clip_fps(clip, n),
            "video_id": clip.video_id,
            "dedup_cluster": clip.dedup_cluster or clip.id,
        }
    }


def _identity(side: dict[str, Any]) -> str:
    """A side as it names its content (without the fps, video id and dedup cluster it carries: pair
    ids stay those of before these were added)."""
    video = side.get("video")
    if isinstance(video, dict) and any(k in video for k in _DESCRIPTIVE):
        side = {**side, "video": {k: v for k, v in video.items() if k not in _DESCRIPTIVE}}
    return json.dumps(side, sort_keys=True)


def _whole_video(video_id: str, video: Video | None, n: int) -> dict[str, Any]:
    return {
        "video": {
            "clip_id": layout.video_ref(video_id),
            "frames": layout.video_frame_keys(video_id, n),
            "fps": sampling_fps(n, video.duration_s if video else None),
            "video_id": video_id,
        }
    }


def pairs_stage(video_id: str, hard_negatives: int) -> dict[str, Any]:
    n = get_settings().synth.frames_per_clip
    with session_scope() as db:
        video = db.get(Video, video_id)
        clips = db.scalars(
            select(Clip).where(Clip.video_id == video_id, clip_stored()).order_by(Clip.start_ms)
        ).all()
        caps = db.scalars(select(Caption).where(Caption.target_id.in_([c.id for c in clips]))).all()
        others = db.scalars(
            select(Clip)
            .where(Clip.video_id != video_id, clip_stored())
            .order_by(Clip.id)
            .limit(HARD_NEGATIVE_POOL)
        ).all()
        db.expunge_all()
    by_clip: dict[str, dict[str, Caption]] = {}
    for c in caps:
        by_clip.setdefault(c.target_id, {})[c.style] = c
    rows: list[dict[str, Any]] = []

    def add(
        task: str,
        domain: str | None,
        clip: Clip,
        query: dict,
        target: dict,
        meta: dict[str, Any] | None = None,
    ) -> None:
        rng = random.Random(f"{task}|{clip.id}|{_identity(query)}")
        k = min(hard_negatives, len(others))
        negs = (
            [_video_ref(o, n) for o in rng.sample(others, k)] if task in HARD_NEGATIVE_TASKS else []
        )
        rows.append(
            {
                "id": stable_id(task, _identity(query), _identity(target)),
                "task": task,
                "domain": domain,
                "video_id": video_id,
                "dedup_cluster": clip.dedup_cluster,
                "query": query,
                "target": target,
                "hard_negatives": negs,
                "meta": meta or {},
            }
        )

    whole = _whole_video(video_id, video, n)
    for clip in clips:
        _clip_pairs(add, clip, by_clip.get(clip.id, {}), whole, len(clips), n)
    with session_scope() as db:
        upsert(db, Pair, rows)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["task"]] = counts.get(r["task"], 0) + 1
    return {"pairs": len(rows), "pairs_by_task": counts, "pairs_by_variant": count_variants(rows)}


def variant(task: str, meta: dict[str, Any] | None) -> str:
    """What made a pair of its task: the caption style of a T2V or T2I query, the TI2V strategy,
    the TV2V relation ("-" where the pair records none)."""
    meta = meta or {}
    return str(meta.get("strategy") or meta.get("relation") or meta.get("style") or "-")


def count_variants(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Pairs by task and variant (``variant``), a pair counted once (as the database keeps it:
    the last row of an id)."""
    out: dict[str, dict[str, int]] = {}
    for r in {r["id"]: r for r in rows}.values():
        by = out.setdefault(r["task"], {})
        v = variant(r["task"], r.get("meta"))
        by[v] = by.get(v, 0) + 1
    return out


def t2v_styles(cc: dict[str, Caption], clip_id: str, mode: str) -> list[str]:
    """The caption styles that become T2V queries: one sampled per clip (SPEC §3.3: "(video, one
    sampled new caption)", seeded by the clip id; the default) or all five (``all``)."""
    have = [s for s in DOMAIN_OF_STYLE if s in cc]
    if mode == "all" or not have:
        return have
    return [random.Random(f"t2v|{clip_id}").choice(have)]


def t2t_styles(cc: dict[str, Caption], clip_id: str, used: list[str], mode: str) -> list[str]:
    """The (query, target) caption styles of the T2T pair: two of the clip's captions that were
    not T2V queries (SPEC §3.4), drawn seeded by the clip id; with ``all`` (every style a T2V
    query) concise → rich. Empty when the clip has too few captions."""
    if mode == "all":
        return ["concise", "rich"] if "concise" in cc and "rich" in cc else []
    rest = [s for s in DOMAIN_OF_STYLE if s in cc and s not in used]
    if len(rest) < 2:
        return []
    return random.Random(f"t2t|{clip_id}").sample(rest, 2)


def t2i_style(cc: dict[str, Caption], clip_id: str, mode: str) -> str | None:
    """The frame-caption style of the T2I pair: one sampled among the keyframe's captions (the
    same five styles as the video's, SPEC §3.3), or the concise one (``frame``) with ``all``."""
    have = [s for s in FRAME_STYLES.values() if s in cc]
    if mode == "all" or len(have) < 2:
        return "frame" if "frame" in cc else (have[0] if have else None)
    return random.Random(f"t2i|{clip_id}").choice(have)


def _clip_pairs(
    add,  # noqa: ANN001
    clip: Clip,
    cc: dict[str, Caption],
    whole: dict[str, Any],
    n_clips: int,
    n: int,
) -> None:
    """The pairs of one clip, through ``add(task, domain, clip, query, target, meta)``, as SPEC
    §3.3–3.4 builds them: T2V (text, clip) with one sampled caption (``synth.t2v_styles``), T2T
    from two captions the T2V pair did not use, T2I (frame caption, frame); a frame f_jk of the
    clip (its stored keyframe, the frame the captioner saw) and the clip c_jl go with *their
    video* v_j: I2V (frame → video), V2V (clip → video), TI2V (text + frame → video), TV2V (text +
    clip → video)."""
    mode = get_settings().synth.t2v_styles
    vref = _video_ref(clip, n)
    key_img = {"image": layout.keyframe_key(clip.id)}
    used = t2v_styles(cc, clip.id, mode)
    for style in used:
        dom = DOMAIN_OF_STYLE[style]
        if style == "rich":
            dom = {"spatial": "spatial", "temporal": "temporal"}.get(
                cc[style].info_profile or "", dom
            )
        add("T2V", dom, clip, {"text": cc[style].text}, vref, {"style": style})
    if tt := t2t_styles(cc, clip.id, used, mode):
        q, t = tt
        add(
            "T2T", "coarse", clip, {"text": cc[q].text}, {"text": cc[t].text}, {"style": f"{q}>{t}"}
        )
    if fs := t2i_style(cc, clip.id, mode):
        add("T2I", "spatial", clip, {"text": cc[fs].text}, key_img, {"style": fs})
    add("I2V", "spatial", clip, key_img, whole)
    if "composed_image" in cc:
        _composed(add, "TI2V", clip, cc["composed_image"], key_img, whole, "strategy")
    if "composed_video" in cc:
        _composed(add, "TV2V", clip, cc["composed_video"], vref, whole, "relation")
    add("V2V", "partial" if n_clips > 1 else "coarse", clip, vref, whole)


def _composed(
    add,  # noqa: ANN001
    task: str,
    clip: Clip,
    cap: Caption,
    ref: dict[str, Any],
    target: dict[str, Any],
    meta_key: str,
) -> None:
    """A composed query (temporal) of ``target``: the caption's text with the frame or clip it
    speaks of (``ref``), and how the caption was written (its ``strategy`` or ``relation``)."""
    meta = {meta_key: (cap.meta or {}).get(meta_key)}
    add(task, "temporal", clip, {"text": cap.text, **ref}, target, meta)
