"""A small OpenAI-compatible chat-completions server on 127.0.0.1 for tests.

It plays a script of replies in order (then repeats the last one): a reply is a JSON answer, a
raw text body, an HTTP error status or a delay. Every request is recorded so tests can check
what the real ``openai`` client sent (messages, headers, response_format).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    content: str = ""
    status: int = 200
    delay: float = 0.0
    reject_json_mode: bool = False
    raw: bytes | None = None  # sent as the whole response body instead of a chat completion
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ChatServer:
    replies: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    raw_headers: list[dict[str, str]] = field(default_factory=list)
    json_mode: bool = True

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._served = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                reply = server._next(body, dict(self.headers))
                if reply.delay:
                    time.sleep(reply.delay)
                if "response_format" in body and not server.json_mode:
                    self._send(400, {"error": {"message": "response_format is not supported", "type": "invalid"}})
                    return
                if reply.raw is not None:
                    self._send_bytes(reply.status, reply.raw, reply.headers)
                    return
                if reply.status != 200:
                    error = {"error": {"message": f"scripted {reply.status}", "type": "test"}}
                    self._send(reply.status, error, reply.headers)
                    return
                self._send(
                    200,
                    {
                        "id": "chatcmpl-test",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", "test"),
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": reply.content},
                            }
                        ],
                        "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
                    },
                )

            def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
                self._send_bytes(status, json.dumps(payload).encode(), headers)

            def _send_bytes(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    headers = headers or {}
                    if status == 429 and not headers:
                        self.send_header("retry-after-ms", "10")
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def _next(self, body: dict, headers: dict[str, str]) -> Reply:
        with self._lock:
            if not ("response_format" in body and not self.json_mode):
                self.requests.append(body)
                self.raw_headers.append({key.lower(): value for key, value in headers.items()})
                index = min(self._served, len(self.replies) - 1)
                self._served += 1
                return self.replies[index] if self.replies else Reply(content="{}")
            return Reply()

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self.replies = list(replies)
            self._served = 0
            self.requests.clear()
            self.raw_headers.clear()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def answer_json(classes: list[str], words_per_class: int = 4, prefix: str = "w") -> str:
    """A valid answer for ``classes``: distinct words per class, one sentence each."""
    return json.dumps(
        {
            name: {
                "sentence": f"A typical {name} seen from a car.",
                "words": [f"{prefix}{name.lower().replace(' ', '')}{i}" for i in range(words_per_class)],
            }
            for name in classes
        }
    )
