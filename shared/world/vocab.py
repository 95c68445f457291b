"""The vocabulary of the procedural world: what exists in it and the words for it."""

from __future__ import annotations

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 90, 240),
    "yellow": (240, 220, 40),
    "white": (245, 245, 245),
    "magenta": (220, 50, 220),
    "cyan": (40, 220, 230),
    "orange": (250, 140, 20),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (12, 12, 14),
    "navy": (16, 22, 60),
    "dark green": (14, 48, 22),
    "maroon": (62, 16, 20),
    "gray": (58, 58, 62),
}
SHAPES = ("circle", "square", "triangle")
SIZES = {"small": 0.13, "large": 0.22}  # radius as a fraction of the frame side
TEXTURES = ("solid", "striped")
DIRECTIONS: dict[str, tuple[float, float]] = {
    "left": (-1.0, 0.0),
    "right": (1.0, 0.0),
    "up": (0.0, -1.0),
    "down": (0.0, 1.0),
}
MOTIONS = (*DIRECTIONS, "still")
CAMERA_MOTIONS = ("static", "pan left", "pan right", "zoom in", "zoom out")
EVENT_KINDS = ("appears", "disappears", "changes color", "moves")
FAILURES = ("static", "near_duplicate", "mismatched_caption", "truncated", "garbage", "empty")
