"""The `openai` captioner against a local HTTP server that speaks the OpenAI chat-completions API.

The server is a test double for vLLM (which cannot run here): it answers like vLLM's OpenAI server
and can be told to send malformed JSON, time out, fail with 5xx, or answer for another clip."""

from __future__ import annotations

import json
import random
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from services.synth.captioner import CaptionError, ClipContext, OpenAICaptioner
from shared.config import CaptionSettings


class FakeVLLM:
    def __init__(self) -> None:
        self.script: list[str] = []  # behaviour per request: ok | malformed | timeout | 500 | wrong_clip | schema
        self.requests: list[dict] = []
        self.release = threading.Event()  # a "timeout" request hangs until the test ends
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                outer.requests.append({"path": self.path, "body": body, "request_id": self.headers.get("x-request-id")})
                mode = outer.script.pop(0) if outer.script else "ok"
                if mode == "timeout":
                    outer.release.wait(60)
                if mode == "500":
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b'{"error": {"message": "engine died"}}')
                    return
                text = body["messages"][0]["content"][-1]["text"]
                clip = re.search(r"clip id: ([\w-]+)", text).group(1)
                reply = {"clip_id": "someone-else" if mode == "wrong_clip" else clip,
                         "1": "a red circle moves left", "2": "a detailed account " * 10, "3": "an abstract view",
                         "4": "red, circle, left", "5": "the circle at the end", "frame": "a red circle on black",
                         "composed_image": "the red circle from the reference image moving left",
                         "composed_video": "what happens next to the circle"}
                content = json.dumps(reply)
                if mode == "malformed":
                    content = content[: len(content) // 2]
                if mode == "schema":
                    content = json.dumps({"clip_id": clip, "1": "too few keys"})
                payload = {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
                           "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
                           "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


@pytest.fixture
def vllm():
    server = FakeVLLM()
    yield server
    server.close()


def _ctx(clip: str = "clip-1") -> ClipContext:
    frames = [np.full((32, 32, 3), i * 20, np.uint8) for i in range(8)]
    return ClipContext(clip_id=clip, frames=frames, keyframe=frames[4], keyframe_t=1.0, raw_caption='a "red" ball', sidecar=None)


# Normal replies get a generous timeout (a loaded CI machine must not turn them into timeouts and
# change the request counts asserted); only the "timeout" fault's test waits for a shorter one.
TIMEOUT_S, FAULT_TIMEOUT_S = 30.0, 3.0


def _captioner(url: str, retries: int = 2, timeout_s: float = TIMEOUT_S) -> OpenAICaptioner:
    return OpenAICaptioner(CaptionSettings(backend="openai", base_url=url, model="Qwen/Qwen2.5-VL-7B-Instruct",
                                           timeout_s=timeout_s, max_retries=retries), {"spatial": 0.3, "temporal": 0.6, "other": 0.1})


def test_structured_request_and_validated_reply(vllm):
    caps = _captioner(vllm.url).caption(_ctx(), random.Random(0))
    req = vllm.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["request_id"] == "clip-1:0"
    assert req["body"]["response_format"]["type"] == "json_schema"
    assert sum(1 for part in req["body"]["messages"][0]["content"] if part["type"] == "image_url") == 8
    assert caps.video["concise"] == "a red circle moves left" and caps.model == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert caps.prompt_version and caps.request_ids == ["clip-1:0"]


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
