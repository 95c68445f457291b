"""Model inputs as text: the default system text, the instruction table, and the exact prompt
string of SPEC §6.3 (Qwen2.5-VL chat template + appended ``<|endoftext|>``)."""

from __future__ import annotations

import re

DEFAULT_SYSTEM = "You are a helpful assistant."
EOD = "<|endoftext|>"
VIDEO_PLACEHOLDER = "<|vision_start|><|video_pad|><|vision_end|>"
IMAGE_PLACEHOLDER = "<|vision_start|><|image_pad|><|vision_end|>"

# UVRB query instructions, verbatim from Table 5 of the paper (SPEC §6.4).
UVRB_INSTRUCTIONS: dict[str, str] = {
    "MSRVTT": "Find the clip that corresponds to the described scene in the given video.",
    "DiDeMo": "Find a video that includes the following described scenes.",
    "CRB-G": "Find the video according to the general text description.",
    "CRB-S": "Find the video according to the spatial description.",
    "VDC-O": "Find the video according to the object description.",
    "CRB-T": "Find the video according to the temporal description.",
    "CMRB": "Find the video according to the camera motion description.",
    "DREAM-E": "Find the video according to the text description.",
    "LoVR-TH": "Find the video according to text description about video theme information.",
    "PEV-K": "Find the video according to the text description of a series of keywords.",
    "LoVR-V": "Find the long video according to the long text description.",
    "VDC-D": "Find the video according to the detailed text description.",
    "MS-TI": "Find the video clip that corresponds to the given text and the given image.",
    "MS-TV": "Find the video clip that corresponds to the given text and the given video.",
    "MSRVTT-I2V": "Find the video according to the image.",
    "LoVR-C2V": "Find the original long video according to the short video clip.",
}

# Training tasks (SPEC §3.5, §4.1); T2V is the paper's Fig. 4 example (SPEC §5.4).
TASK_INSTRUCTIONS: dict[str, str] = {
    "T2T": "Find a text that describes the same video as the given text.",
    "T2I": "Find an image according to the given text.",
    "T2V": "Find a video according to the given text.",
    "TI2V": "Find a video that matches the given image after the described change.",
    "TV2V": "Find a video that matches the given video after the described change.",
    "I2V": "Find the video that contains the given image.",
    "V2V": "Find the video that contains the given video clip.",
}


_SPECIAL = re.compile(r"<\|[^<>|]{0,64}\|>|</?tool_call>")  # Qwen's control tokens


def plain_text(text: str) -> str:
    """User text as text only: every ``<|...|>`` control token is removed (repeatedly, so pieces
    cannot join into a new one), so a query cannot add image slots or chat turns to the prompt."""
    while True:
        cleaned = _SPECIAL.sub("", text)
        if cleaned == text:
            return cleaned
        text = cleaned


def build_prompt(
    text: str | None = None,
    *,
    image: bool = False,
    video: bool = False,
    instruction: str | None = None,
) -> str:
    """The exact model input string: system turn (instruction for queries, default for candidates),
    user turn with video placeholder, then image placeholder, then text; generation prompt; EOD."""
    system = instruction or DEFAULT_SYSTEM
    content = (
        (VIDEO_PLACEHOLDER if video else "")
        + (IMAGE_PLACEHOLDER if image else "")
        + plain_text(text or "")
    )
    return (
        f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{content}<|im_end|>\n"
        f"<|im_start|>assistant\n{EOD}"
    )
