"""Ground-truth text from a sidecar, in the caption styles V-SynFlow and UVRB need.

Colour is named in almost every style (the first thing a small model learns to see), and spatial
(objects, colours, places, textures) and temporal (event order, motion, camera) content are kept
apart so two videos that differ only in event order get different temporal but equal spatial
descriptions.
"""

from __future__ import annotations

import random
from typing import Any

from shared.world.spec import object_color_at, shot_at, visible
from shared.world.vocab import DIRECTIONS

STYLES = (
    "concise",
    "rich",
    "abstract",
    "keywords",
    "partial",
    "spatial",
    "temporal",
    "camera",
    "long",
)
ORDINALS = ("first", "then", "after that", "next", "later", "finally")


def phrase(obj: dict[str, Any], color: str | None = None, size: bool = True) -> str:
    words = [obj["size"]] if size else []
    if obj["texture"] == "striped":
        words.append("striped")
    words += [color or obj["color"], obj["shape"]]
    return "a " + " ".join(words)


def place(x: float, y: float) -> str:
    h = "left" if x < 0.42 else "right" if x > 0.58 else ""
    v = "top" if y < 0.42 else "bottom" if y > 0.58 else ""
    if h and v:
        return f"at the {v} {h}"
    if h or v:
        return f"on the {h or v}"
    return "in the center"


def _obj(shot: dict[str, Any], oid: str) -> dict[str, Any]:
    return next(o for o in shot["objects"] if o["id"] == oid)


def _event_text(shot: dict[str, Any], ev: dict[str, Any]) -> str:
    obj = _obj(shot, ev["subject"])
    if ev["kind"] == "moves":
        return f"{phrase(obj, size=False)} moves {ev['detail']}"
    if ev["kind"] == "appears":
        return f"{phrase(obj, size=False)} appears"
    if ev["kind"] == "disappears":
        return f"{phrase(obj, size=False)} disappears"
    return f"the {obj['color']} {obj['shape']} turns {ev['detail']}"


def shot_spatial(shot: dict[str, Any]) -> str:
    parts = [f"{phrase(o)} {place(o['x'], o['y'])}" for o in shot["objects"]]
    return f"{' and '.join(parts)} on a {shot['background']} background"


def shot_temporal(shot: dict[str, Any]) -> str:
    texts = [_event_text(shot, ev) for ev in shot["events"]]
    if not texts:
        still = " and ".join(phrase(o, size=False) for o in shot["objects"])
        return f"{still} stays still"
    return ", ".join(
        f"{ORDINALS[min(i, len(ORDINALS) - 2)] if i < len(texts) - 1 or i == 0 else 'finally'} {t}"
        for i, t in enumerate(texts)
    )


def camera_text(shot: dict[str, Any]) -> str:
    return {
        "static": "the camera is static",
        "pan left": "the camera pans left",
        "pan right": "the camera pans right",
        "zoom in": "the camera zooms in",
        "zoom out": "the camera zooms out",
    }[shot["camera"]]


def describe(sidecar: dict[str, Any], style: str, rng: random.Random | None = None) -> str:
    rng = rng or random.Random(sidecar.get("seed", 0))
    shots = sidecar["shots"]
    if style == "spatial":
        return "; ".join(shot_spatial(s) for s in shots) + "."
    if style == "temporal":
        return ". Then the scene cuts: ".join(shot_temporal(s) for s in shots) + "."
    if style == "camera":
        return ", then ".join(camera_text(s) for s in shots) + "."
    if style == "concise":
        main = shots[0]["objects"][0]
        motion = f" moving {main['motion']}" if main["motion"] != "still" else ""
        tail = (
            f", then a cut to {phrase(shots[1]['objects'][0], size=False)}"
            if len(shots) > 1
            else ""
        )
        return f"{phrase(main)}{motion} on a {shots[0]['background']} background{tail}."
    if style == "keywords":
        words: list[str] = []
        for s in shots:
            for o in s["objects"]:
                words += [o["color"], o["shape"]] + (
                    [o["motion"]] if o["motion"] != "still" else []
                )
                if o.get("color_after"):
                    words.append(o["color_after"])
            words += [s["background"], s["camera"]]
        return ", ".join(dict.fromkeys(words))
    if style == "partial":
        shot = rng.choice(shots)
        if shot["events"]:
            return _event_text(shot, rng.choice(shot["events"])) + "."
        return shot_spatial(shot) + "."
    if style == "abstract":
        colors = sorted({o["color"] for s in shots for o in s["objects"]})
        mood = (
            "calm" if all(o["motion"] == "still" for s in shots for o in s["objects"]) else "lively"
        )
        plural = "s" if len(shots) > 1 else ""
        return (
            f"a {mood} minimalist animation of {', '.join(colors)} geometric shapes "
            f"in {len(shots)} shot{plural}."
        )
    if style in ("rich", "long"):
        parts = []
        for i, s in enumerate(shots):
            lead = f"shot {i + 1}: " if style == "long" or len(shots) > 1 else ""
            parts.append(f"{lead}{shot_spatial(s)}; {shot_temporal(s)}; {camera_text(s)}")
        return ". ".join(parts) + "."
    raise ValueError(f"unknown style {style!r}; known: {STYLES}")


def position_at(obj: dict[str, Any], shot: dict[str, Any], t: float) -> tuple[float, float]:
    dx, dy = DIRECTIONS.get(obj["motion"], (0.0, 0.0))
    elapsed = t - max(obj["appear_s"], shot["start_s"])
    return obj["x"] + dx * obj["speed"] * elapsed, obj["y"] + dy * obj["speed"] * elapsed


def describe_frame(sidecar: dict[str, Any], t: float) -> str:
    """What a still frame at ``t`` shows (spatial only; nothing a single frame cannot prove)."""
    shot = shot_at(sidecar, t)
    objs = [o for o in shot["objects"] if visible(o, t)]
    if not objs:
        return f"an empty {shot['background']} background."
    parts = [f"{phrase(o, object_color_at(o, t))} {place(*position_at(o, shot, t))}" for o in objs]
    return f"{' and '.join(parts)} on a {shot['background']} background."


def composed_change(sidecar: dict[str, Any], ref_t: float, kind: str = "image") -> str:
    """A query text that, with a reference frame (``image``) or clip (``video``) taken at ``ref_t``,
    describes the target video: what changes or happens after the reference."""
    shot = shot_at(sidecar, ref_t)
    later = [ev for s in sidecar["shots"] for ev in s["events"] if ev["t_s"] > ref_t]
    later_shots = [s for s in sidecar["shots"] if s["start_s"] > ref_t]
    if kind == "video":
        if later_shots:
            return f"what happens next: the scene cuts to {shot_spatial(later_shots[0])}."
        if later:
            return (
                f"continuing this clip, {_event_text(shot_at(sidecar, later[0]['t_s']), later[0])}."
            )
        return f"the same clip continues while {camera_text(shot)}."
    visible_objs = [o for o in shot["objects"] if visible(o, ref_t)] or shot["objects"]
    anchor = visible_objs[0]
    ref = f"the {object_color_at(anchor, ref_t)} {anchor['shape']} from the reference image"
    if later:
        ev = later[0]
        return f"{ref}, after which {_event_text(shot_at(sidecar, ev['t_s']), ev)}."
    if anchor["motion"] != "still":
        return f"{ref} keeps moving {anchor['motion']} while {camera_text(shot)}."
    return f"{ref} stays in place while {camera_text(shot)}."


def noisy_caption(
    sidecar: dict[str, Any], rng: random.Random, other: dict[str, Any] | None = None
) -> tuple[str, str]:
    """A web-style raw caption and the kind of noise applied: clean, loose, wrong, empty or junk."""
    roll = rng.random()
    if other is not None:
        return describe(other, "concise", rng), "mismatched"
    if roll < 0.55:
        return describe(sidecar, rng.choice(["concise", "keywords", "partial"]), rng), "loose"
    if roll < 0.7:
        obj = sidecar["shots"][0]["objects"][0]
        wrong = rng.choice([c for c in ("red", "green", "blue", "yellow") if c != obj["color"]])
        return describe(sidecar, "concise", rng).replace(obj["color"], wrong, 1), "wrong"
    if roll < 0.8:
        return "", "empty"
    if roll < 0.9:
        return rng.choice(
            ["IMG_2041.mp4", "video", "#shapes #fun #viral", "untitled clip", "download (3).mp4"]
        ), "junk"
    return describe(sidecar, "rich", rng), "clean"
