"""The `openai` captioner against a local HTTP server that speaks the OpenAI chat-completions API.

The server is a test double for vLLM (which cannot run here): it answers like vLLM's OpenAI server,
records every request it gets (path, JSON body, request id), and can be told to send malformed
JSON, time out, fail with 5xx, or answer for another clip. The request is checked against what the
vLLM compose pins reads: image parts within --limit-mm-per-prompt and the `structured_outputs`
request field (vLLM >= 0.12 silently ignores the removed guided_* fields)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import yaml

from services.synth.captioner import (
    CaptionError,
    CaptionReply,
    ClipContext,
    OpenAICaptioner,
    _data_url,
)
from shared.config import CaptionSettings
from tests.fake_vllm import FakeVLLM

COMPOSE = Path(__file__).resolve().parents[3] / "compose.yaml"


def _vllm_image_limit() -> int:
    args = yaml.safe_load(COMPOSE.read_text())["services"]["vllm"]["command"]
    return json.loads(args[args.index("--limit-mm-per-prompt") + 1])["image"]


@pytest.fixture
def vllm():
    server = FakeVLLM()
    yield server
    server.close()


def _ctx(clip: str = "clip-1", n: int = 8) -> ClipContext:
    frames = [np.full((32, 32, 3), i * 15, np.uint8) for i in range(n)]
    return ClipContext(
        clip_id=clip,
        frames=frames,
        keyframe=frames[n // 2],
        keyframe_t=1.0,
        raw_caption='a "red" ball',
        sidecar=None,
    )


# Normal replies get a generous timeout (a loaded CI machine must not turn them into timeouts and
# change the request counts asserted); only the "timeout" fault's test waits for a shorter one.
TIMEOUT_S, FAULT_TIMEOUT_S = 30.0, 3.0


def _captioner(url: str, retries: int = 2, timeout_s: float = TIMEOUT_S, **kw) -> OpenAICaptioner:
    return OpenAICaptioner(
        CaptionSettings(
            backend="openai",
            base_url=url,
            model="Qwen/Qwen2.5-VL-7B-Instruct",
            timeout_s=timeout_s,
            max_retries=retries,
            **kw,
        ),
        {"spatial": 0.3, "temporal": 0.6, "other": 0.1},
    )


def _images(req: dict) -> list[str]:
    parts = req["body"]["messages"][0]["content"]
    return [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]


def test_structured_request_and_validated_reply(vllm):
    """With the default settings the request carries exactly as many images as compose's vLLM
    allows per prompt, and asks for JSON with the reply's schema through `structured_outputs`."""
    caps = _captioner(vllm.url).caption(_ctx(n=16), random.Random(0))
    req = vllm.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["request_id"] == "clip-1:0"
    body = req["body"]
    assert len(_images(req)) == _vllm_image_limit() == CaptionSettings().frames_per_request
    assert f"given {_vllm_image_limit()} frames" in body["messages"][0]["content"][-1]["text"]
    assert not any(k.startswith("guided_") for k in body) and "response_format" not in body
    schema = body["structured_outputs"]["json"]
    aliases = {f.alias or n for n, f in CaptionReply.model_fields.items()}
    assert schema["type"] == "object" and set(schema["required"]) == aliases == set(
        schema["properties"]
    )
    assert (
        caps.video["concise"] == "a red circle moves left"
        and caps.model == "Qwen/Qwen2.5-VL-7B-Instruct"
    )
    assert caps.prompt_version and caps.request_ids == ["clip-1:0"]


@pytest.mark.parametrize(("limit", "n", "sent"), [(4, 8, 4), (8, 3, 3), (1, 8, 1)])
def test_frames_per_request_is_read(vllm, limit, n, sent):
    """caption.frames_per_request bounds the images sent; they span the clip in order and end on
    its last frame (the "frame" caption is about it)."""
    ctx = _ctx(n=n)
    _captioner(vllm.url, frames_per_request=limit).caption(ctx, random.Random(0))
    images = _images(vllm.requests[0])
    assert len(images) == sent
    assert images[-1] == _data_url(ctx.frames[-1])
    if sent > 1:
        assert images[0] == _data_url(ctx.frames[0])


@pytest.mark.parametrize("bad", ["malformed", "timeout", "500", "wrong_clip", "schema"])
def test_transient_faults_are_retried(vllm, bad):
    vllm.script = [bad, "ok"]
    timeout_s = FAULT_TIMEOUT_S if bad == "timeout" else TIMEOUT_S
    caps = _captioner(vllm.url, timeout_s=timeout_s).caption(_ctx(), random.Random(0))
    assert caps.video["keywords"] == "red, circle, left"
    assert len(caps.request_ids) == 2


@pytest.mark.parametrize("bad", ["malformed", "500", "wrong_clip"])
def test_persistent_faults_end_in_a_recorded_failure_not_a_caption(vllm, bad):
    vllm.script = [bad] * 10
    with pytest.raises(CaptionError, match="after 3 attempts"):
        _captioner(vllm.url, retries=2).caption(_ctx(), random.Random(0))
    assert len(vllm.requests) == 3
