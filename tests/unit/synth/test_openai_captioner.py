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

from services.synth import prompts
from services.synth.captioner import CaptionError, ClipContext
from services.synth.captioner_openai import OpenAICaptioner, _data_url
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
        keyframe=np.full((32, 32, 3), 250, np.uint8),
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


def _by_prompt(server: FakeVLLM) -> dict[str, dict]:
    return {r["request_id"].split(":")[1]: r for r in server.requests}


def test_structured_request_and_validated_reply(vllm):
    """One request per prompt file, each asking for JSON with that prompt's schema through
    `structured_outputs`; the video prompt carries as many images as compose's vLLM allows."""
    caps = _captioner(vllm.url).caption(_ctx(n=16), random.Random(0))
    reqs = _by_prompt(vllm)
    assert list(reqs) == list(prompts.PROMPT_NAMES)
    assert caps.request_ids == [f"clip-1:{n}:0" for n in prompts.PROMPT_NAMES]
    for name, req in reqs.items():
        body = req["body"]
        assert req["path"] == "/v1/chat/completions"
        assert not any(k.startswith("guided_") for k in body) and "response_format" not in body
        assert body["structured_outputs"]["json"] == prompts.load(name).schema
    video = reqs["video_caption"]
    assert len(_images(video)) == _vllm_image_limit() == CaptionSettings().frames_per_request
    assert (
        f"given {_vllm_image_limit()} frames" in video["body"]["messages"][0]["content"][-1]["text"]
    )
    assert caps.video["concise"] == "a red circle moves left" and set(caps.frame) == set(caps.video)
    assert caps.model == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert caps.prompt_versions == {n: prompts.load(n).version for n in prompts.PROMPT_NAMES}


def test_every_prompt_is_versioned_data_with_a_valid_schema():
    import jsonschema

    for name in prompts.PROMPT_NAMES:
        p = prompts.load(name)
        assert p.version and p.template and p.schema["type"] == "object"
        jsonschema.Draft202012Validator.check_schema(p.schema)
    assert set(prompts.load("video_caption").schema["required"]) >= {"1", "2", "3", "4", "5"}
    assert set(prompts.load("frame_caption").schema["required"]) >= {"1", "2", "3", "4", "5"}
    assert len(prompts.load("composed_image").choices) == 4
    assert len(prompts.load("composed_video").choices) == 4
    with pytest.raises(jsonschema.ValidationError):
        prompts.load("composed_image").validate({"clip_id": "c", "strategy": "x", "query": "abc"})


def test_strategies_and_relations_are_sampled_and_followed(vllm):
    """Every TI2V strategy and TV2V relation is asked for over a few clips; the request names it,
    the reply validates against the schema and the captions record it."""
    seen_s, seen_r = set(), set()
    for seed in range(24):
        caps = _captioner(vllm.url).caption(_ctx(), random.Random(seed))
        seen_s.add(caps.strategy)
        seen_r.add(caps.relation)
        reqs = vllm.requests[-2:]
        assert (
            f'Use the strategy "{caps.strategy}"'
            in reqs[0]["body"]["messages"][0]["content"][-1]["text"]
        )
        assert (
            f'Use the relation "{caps.relation}"'
            in reqs[1]["body"]["messages"][0]["content"][-1]["text"]
        )
    assert seen_s == set(prompts.load("composed_image").choices)
    assert seen_r == set(prompts.load("composed_video").choices)


def test_the_frame_captioned_is_the_keyframe(vllm):
    """The frame prompt is shown the keyframe alone (the image T2I/TI2V pairs use); the TI2V prompt
    shows it first, then the clip; the TV2V prompt the reference clip, then the target's frames."""
    ctx = _ctx()
    ctx.target_frames = [np.full((32, 32, 3), 7, np.uint8)] * 8
    _captioner(vllm.url, frames_per_request=4).caption(ctx, random.Random(0))
    reqs = _by_prompt(vllm)
    assert _images(reqs["frame_caption"]) == [_data_url(ctx.keyframe)]
    assert _images(reqs["composed_image"])[0] == _data_url(ctx.keyframe)
    tv2v = _images(reqs["composed_video"])
    assert tv2v[0] == _data_url(ctx.frames[0]) and tv2v[-1] == _data_url(ctx.target_frames[-1])


@pytest.mark.parametrize(("limit", "n", "sent"), [(4, 8, 4), (8, 3, 3), (1, 8, 1)])
def test_frames_per_request_is_read(vllm, limit, n, sent):
    """caption.frames_per_request bounds the images sent; they span the clip in order."""
    ctx = _ctx(n=n)
    _captioner(vllm.url, frames_per_request=limit).caption(ctx, random.Random(0))
    reqs = _by_prompt(vllm)
    assert all(len(_images(r)) <= max(limit, 2) for r in reqs.values())
    images = _images(reqs["video_caption"])
    assert len(images) == sent
    assert images[-1] == _data_url(ctx.frames[-1])
    if sent > 1:
        assert images[0] == _data_url(ctx.frames[0])


@pytest.mark.parametrize(
    "bad", ["malformed", "timeout", "500", "wrong_clip", "schema", "wrong_choice"]
)
def test_transient_faults_are_retried(vllm, bad):
    n_ok = 2 if bad == "wrong_choice" else 0  # that fault only shows on a composed prompt
    vllm.script = ["ok"] * n_ok + [bad, "ok"]
    timeout_s = FAULT_TIMEOUT_S if bad == "timeout" else TIMEOUT_S
    caps = _captioner(vllm.url, timeout_s=timeout_s).caption(_ctx(), random.Random(0))
    assert caps.video["keywords"] == "red, circle, left"
    assert len(caps.request_ids) == len(prompts.PROMPT_NAMES) + 1


@pytest.mark.parametrize("bad", ["malformed", "500", "wrong_clip"])
def test_persistent_faults_end_in_a_recorded_failure_not_a_caption(vllm, bad):
    vllm.script = [bad] * 10
    with pytest.raises(CaptionError, match="after 3 attempts at video_caption"):
        _captioner(vllm.url, retries=2).caption(_ctx(), random.Random(0))
    assert len(vllm.requests) == 3
