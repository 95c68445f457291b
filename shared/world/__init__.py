"""The procedural video world: specs with ground truth, rendering, descriptions, corpora."""

from shared.world.describe import STYLES, composed_change, describe, describe_frame
from shared.world.generate import WorldVideo, generate, plan
from shared.world.render import render, render_frames
from shared.world.spec import sample_spec
from shared.world.vocab import BACKGROUNDS, CAMERA_MOTIONS, COLORS, DIRECTIONS, FAILURES, SHAPES

__all__ = [
    "BACKGROUNDS",
    "CAMERA_MOTIONS",
    "COLORS",
    "DIRECTIONS",
    "FAILURES",
    "SHAPES",
    "STYLES",
    "WorldVideo",
    "composed_change",
    "describe",
    "describe_frame",
    "generate",
    "plan",
    "render",
    "render_frames",
    "sample_spec",
]
