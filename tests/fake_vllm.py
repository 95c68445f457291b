"""A test double for vLLM's OpenAI-compatible chat-completions server (vLLM cannot run here): it
answers like vLLM, from the JSON schema each request sends (so every prompt's schema is replayed),
records every request it gets (path, JSON body, request id), and can be told to send malformed
JSON, time out, fail with 5xx, break the schema, or answer for another clip."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TEXTS = {
    "1": "a red circle moves left",
    "2": "a detailed account " * 10,
    "3": "an abstract view",
    "4": "red, circle, left",
    "5": "the circle at the end",
}
QUERIES = {
    "strategy": "the red circle from the reference image moving left",
    "relation": "what happens next to the circle",
}


def reply_for(schema: dict[str, Any], text: str, clip: str) -> dict[str, Any]:
    """A reply that follows ``schema``: the clip id echoed, the choice the prompt names, texts."""
    out: dict[str, Any] = {}
    for key in schema["required"]:
        prop = schema["properties"][key]
        if key == "clip_id":
            out[key] = clip
        elif "enum" in prop:
            named = re.search(rf'Use the {key} "(\w+)"', text)
            out[key] = named.group(1) if named else prop["enum"][0]
        elif key == "query":
            out[key] = next(QUERIES[k] for k in QUERIES if k in schema["properties"])
        else:
            out[key] = TEXTS.get(key, f"a {key} text")
    return out


class FakeVLLM:
    def __init__(self) -> None:
        # behaviour per request: ok | malformed | timeout | 500 | wrong_clip | schema | wrong_choice
        self.script: list[str] = []
        self.requests: list[dict] = []
        self.release = threading.Event()  # a "timeout" request hangs until the test ends
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                outer.requests.append(
                    {
                        "path": self.path,
                        "body": body,
                        "request_id": self.headers.get("x-request-id"),
                    }
                )
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
                schema = body["structured_outputs"]["json"]
                reply = reply_for(schema, text, "someone-else" if mode == "wrong_clip" else clip)
                if mode == "wrong_choice":
                    for key in ("strategy", "relation"):
                        if key in reply:
                            others = schema["properties"][key]["enum"]
                            reply[key] = next(c for c in others if c != reply[key])
                content = json.dumps(reply)
                if mode == "malformed":
                    content = content[: len(content) // 2]
                if mode == "schema":
                    content = json.dumps({"clip_id": clip, "1": "too few keys"})
                payload = {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": content},
                        }
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }
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
