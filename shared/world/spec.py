"""Sampling world specs: the ground-truth sidecar of a video, before it is rendered.

A sidecar is plain JSON (it is written beside the video and read back by other services):
``{"id", "seed", "fps", "width", "height", "duration_s", "cuts": [s...], "shots": [shot...],
"caption", "raw_caption", "noise", "failure"}``; a shot is ``{"start_s", "end_s", "background",
"camera", "objects": [obj...], "events": [event...]}``; an object is ``{"id", "shape", "color",
"size", "texture", "x", "y", "motion", "speed", "appear_s", "disappear_s", "color_after",
"change_s"}`` (positions in [0, 1] at the shot start; times relative to the video); an event is
``{"t_s", "kind", "subject", "detail"}`` in time order.
"""

from __future__ import annotations

import random
from typing import Any

from shared.world.vocab import (
    BACKGROUNDS,
    CAMERA_MOTIONS,
    COLORS,
    DIRECTIONS,
    SHAPES,
    SIZES,
    TEXTURES,
)

DEFAULT_FPS = 8
DEFAULT_SIZE = (64, 64)


def _object(
    rng: random.Random, oid: str, start: float, end: float, taken: set[tuple[str, str]]
) -> dict[str, Any]:
    while True:
        shape, color = rng.choice(SHAPES), rng.choice(list(COLORS))
        if (shape, color) not in taken:
            taken.add((shape, color))
            break
    motion = rng.choice([*DIRECTIONS, *DIRECTIONS, "still"])
    dx, dy = DIRECTIONS.get(motion, (0.0, 0.0))
    # start on the side opposite to the motion so the object stays in frame
    x = 0.5 - 0.25 * dx + rng.uniform(-0.08, 0.08)
    y = 0.5 - 0.25 * dy + rng.uniform(-0.08, 0.08)
    obj: dict[str, Any] = {
        "id": oid,
        "shape": shape,
        "color": color,
        "size": rng.choice(list(SIZES)),
        "texture": rng.choice(TEXTURES),
        "x": round(x, 3),
        "y": round(y, 3),
        "motion": motion,
        "speed": round(rng.uniform(0.5, 0.7) / max(end - start, 1e-3), 4),
        "appear_s": start,
        "disappear_s": end,
        "color_after": None,
        "change_s": None,
    }
    return obj


def _event(t_s: float, kind: str, subject: str, detail: str | None = None) -> dict[str, Any]:
    return {"t_s": t_s, "kind": kind, "subject": subject, "detail": detail}


def _object_events(
    rng: random.Random, obj: dict[str, Any], start: float, dur: float
) -> list[dict[str, Any]]:
    """One object's timed change (at most one: appears, disappears or changes color) and motion."""
    events = []
    roll = rng.random()
    if roll < 0.25 and dur >= 2:
        obj["appear_s"] = round(start + rng.uniform(0.25, 0.45) * dur, 2)
        events.append(_event(obj["appear_s"], "appears", obj["id"]))
    elif roll < 0.45 and dur >= 2:
        obj["disappear_s"] = round(start + rng.uniform(0.55, 0.8) * dur, 2)
        events.append(_event(obj["disappear_s"], "disappears", obj["id"]))
    elif roll < 0.65 and dur >= 2:
        obj["change_s"] = round(start + rng.uniform(0.35, 0.65) * dur, 2)
        obj["color_after"] = rng.choice([c for c in COLORS if c != obj["color"]])
        events.append(_event(obj["change_s"], "changes color", obj["id"], obj["color_after"]))
    if obj["motion"] != "still":
        t_s = round(max(obj["appear_s"], start) + 0.01, 2)
        events.append(_event(t_s, "moves", obj["id"], obj["motion"]))
    return events


def _shot(
    rng: random.Random,
    index: int,
    start: float,
    end: float,
    *,
    static: bool = False,
    n_objects: int | None = None,
) -> dict[str, Any]:
    taken: set[tuple[str, str]] = set()
    n = n_objects or rng.choice([1, 1, 2])
    objects = [_object(rng, f"s{index}o{i}", start, end, taken) for i in range(n)]
    camera = "static" if static else rng.choice([*CAMERA_MOTIONS[:1], *CAMERA_MOTIONS])
    events: list[dict[str, Any]] = []
    dur = end - start
    for obj in objects:
        if static:
            obj["motion"] = "still"
            continue
        events += _object_events(rng, obj, start, dur)
    events.sort(key=lambda e: (e["t_s"], e["subject"]))
    return {
        "start_s": round(start, 3),
        "end_s": round(end, 3),
        "background": rng.choice(list(BACKGROUNDS)),
        "camera": camera,
        "objects": objects,
        "events": events,
    }


def sample_spec(
    rng: random.Random,
    vid: str,
    *,
    shots: int | None = None,
    shot_s: tuple[float, float] = (2.0, 3.5),
    fps: int = DEFAULT_FPS,
    size: tuple[int, int] = DEFAULT_SIZE,
    static: bool = False,
    n_objects: int | None = None,
) -> dict[str, Any]:
    """A random video spec: ``shots`` shots (default 1–3) separated by hard cuts."""
    n_shots = shots or rng.choice([1, 2, 2, 3])
    t = 0.0
    shot_list = []
    for i in range(n_shots):
        dur = round(rng.uniform(*shot_s) * fps) / fps
        shot_list.append(_shot(rng, i, t, t + dur, static=static, n_objects=n_objects))
        t += dur
    spec = {
        "id": vid,
        "seed": rng.randrange(2**31),
        "fps": fps,
        "width": size[0],
        "height": size[1],
        "duration_s": round(t, 3),
        "cuts": [s["start_s"] for s in shot_list[1:]],
        "shots": shot_list,
        "caption": None,
        "raw_caption": None,
        "noise": None,
        "failure": "static" if static else None,
    }
    return spec


def object_color_at(obj: dict[str, Any], t: float) -> str:
    if obj.get("change_s") is not None and t >= obj["change_s"]:
        return obj["color_after"]
    return obj["color"]


def visible(obj: dict[str, Any], t: float) -> bool:
    return obj["appear_s"] <= t < obj["disappear_s"]


def shot_at(spec: dict[str, Any], t: float) -> dict[str, Any]:
    for shot in spec["shots"]:
        if shot["start_s"] <= t < shot["end_s"]:
            return shot
    return spec["shots"][-1]


def sub_spec(spec: dict[str, Any], start: float, end: float) -> dict[str, Any]:
    """The sidecar of the span [start, end) of a video: overlapping shots, clipped, times
    shifted."""
    import copy

    shots = []
    for shot in spec["shots"]:
        a, b = max(shot["start_s"], start), min(shot["end_s"], end)
        if b - a <= 1e-6:
            continue
        s = copy.deepcopy(shot)
        s["start_s"], s["end_s"] = round(a - start, 3), round(b - start, 3)
        for o in s["objects"]:
            for k in ("appear_s", "disappear_s", "change_s"):
                if o.get(k) is not None:
                    o[k] = round(min(max(o[k], a), b) - start, 3)
            if o.get("change_s") is not None and o["change_s"] >= s["end_s"]:
                o["change_s"], o["color_after"] = None, None
        s["objects"] = [o for o in s["objects"] if o["disappear_s"] > o["appear_s"]] or s[
            "objects"
        ][:1]
        s["events"] = [
            dict(e, t_s=round(e["t_s"] - start, 3)) for e in shot["events"] if a <= e["t_s"] < b
        ]
        shots.append(s)
    out = dict(
        spec, shots=shots or copy.deepcopy(spec["shots"][:1]), duration_s=round(end - start, 3)
    )
    out["cuts"] = [s["start_s"] for s in out["shots"][1:]]
    return out
