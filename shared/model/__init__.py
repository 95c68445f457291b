"""The GVE embedder (SPEC §5–6) and the tiny offline Qwen2.5-VL bundle."""

from shared.model.embedder import Embedder, pool_last
from shared.model.inputs import EmbedInput, VideoFrames, item_key
from shared.model.prompts import DEFAULT_SYSTEM, TASK_INSTRUCTIONS, UVRB_INSTRUCTIONS, build_prompt
from shared.model.tiny import build_tiny_bundle, ensure_tiny_bundle

__all__ = [
    "DEFAULT_SYSTEM",
    "TASK_INSTRUCTIONS",
    "UVRB_INSTRUCTIONS",
    "Embedder",
    "EmbedInput",
    "VideoFrames",
    "build_prompt",
    "build_tiny_bundle",
    "ensure_tiny_bundle",
    "item_key",
    "pool_last",
]
