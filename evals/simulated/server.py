"""A simulated LLM behind a real OpenAI-compatible HTTP server on 127.0.0.1 (the client path users get).

    with SimulatedLLMServer(knowledge, EXPERT) as server, server.environment():
        run_agent(task, run_dir, llm=server.llm_spec)      # lfagent's openai backend talks to it
    server.stats                                          # requests by kind, decoys, records, flips

Standalone, for trying `lfagent run` or the REPL against it by hand (knowledge of one evals draw)::

    python -m evals.simulated.server --dataset sms --draw 0 --persona expert --port 8765
    OPENAI_BASE_URL=http://127.0.0.1:8765/v1 OPENAI_API_KEY=x lfagent run task.yaml --llm openai:simulated-expert

Speaks POST /v1/chat/completions and GET /v1/models. Every request is read for what it asks (prompts.py)
and answered by the persona (persona.py). The server keeps a log of what it answered, so tests and the
evals can check the rates it was set to.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

from evals.simulated.knowledge import Knowledge
from evals.simulated.persona import EXPERT, PERSONAS, Answer, Persona, Responder
from evals.simulated.prompts import read_request


def approx_tokens(text: str) -> int:
    """About four characters a token, as with English text and BPE tokenizers."""
    return max(1, math.ceil(len(text) / 4))


def request_key(body: dict) -> str:
    """What decides a proposal's sample: the messages and the request's seed (not the model or the port)."""
    payload = json.dumps({"messages": body.get("messages"), "seed": body.get("seed")}, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def completion_body(text: str, body: dict, model: str) -> dict:
    """A chat.completion answering `body` with `text`, cut at the request's max_tokens as a real server would."""
    prompt_tokens = sum(approx_tokens(str(m.get("content", ""))) for m in body.get("messages") or [])
    finish_reason = "stop"
    limit = body.get("max_tokens") or body.get("max_completion_tokens")
    if isinstance(limit, int) and limit > 0 and approx_tokens(text) > limit:
        text, finish_reason = text[: 4 * limit], "length"
    completion_tokens = approx_tokens(text)
    return {"id": f"chatcmpl-sim-{time.monotonic_ns()}", "object": "chat.completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "finish_reason": finish_reason, "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


class SimulatedLLMServer:
    """See the module docstring. Start with `start()` or `with`; `base_url` ends in /v1."""

    def __init__(self, knowledge: Knowledge, persona: Persona = EXPERT, *, port: int = 0):
        self.responder = Responder(knowledge, persona)
        self.persona = persona
        self.model = f"simulated-{persona.name}"
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> "SimulatedLLMServer":
        handler = type("Handler", (_Handler,), {"simulated": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "SimulatedLLMServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the simulated LLM server is not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def llm_spec(self) -> str:
        """The `--llm` value that reaches this server (with `environment()`)."""
        return f"openai:{self.model}"

    @contextmanager
    def environment(self) -> Iterator[None]:
        """OPENAI_BASE_URL / OPENAI_API_KEY pointing at this server, as lfagent's openai backend reads them;
        the previous values come back on exit."""
        saved = {name: os.environ.get(name) for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY")}
        os.environ["OPENAI_BASE_URL"] = self.base_url
        os.environ["OPENAI_API_KEY"] = "simulated"
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    # -- answering -------------------------------------------------------------------------------
    def reply(self, body: dict) -> str:
        """The reply text for one chat-completions body (also usable without HTTP)."""
        read = read_request(body, self.responder.knowledge.class_names)
        answer = self.responder.answer(read, request_key(body))
        with self._lock:
            self.answers.append(answer)
        return answer.text

    @property
    def stats(self) -> dict[str, Any]:
        """Requests by kind; proposals and decoys; records labelled and flipped."""
        with self._lock:
            answers = list(self.answers)
        proposals = [a for a in answers if a.kind in ("code", "keywords", "recall", "concepts", "guideline")]
        return {"requests": len(answers), "by_kind": dict(Counter(str(a.kind) for a in answers)),
                "proposals": len(proposals), "decoys": sum(a.wrong for a in proposals),
                "records": sum(a.records for a in answers), "flipped": sum(a.flipped for a in answers)}


class _Handler(BaseHTTPRequestHandler):
    simulated: SimulatedLLMServer
    server_version = "SimulatedLLM/1.0"

    def log_message(self, format, *args):  # quiet: evals print their own progress
        pass

    def _send_json(self, status: int, obj: Any) -> None:
        payload = json.dumps(obj).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _error(self, status: int, message: str, code: str) -> None:
        self._send_json(status, {"error": {"message": message, "type": code, "code": code}})

    def do_GET(self):
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._send_json(200, {"object": "list", "data": [
                {"id": self.simulated.model, "object": "model", "owned_by": "evals.simulated"}]})
        else:
            self._error(404, f"no route {self.path}", "not_found")

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._error(404, f"no route {self.path}", "not_found")
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._error(400, "request body is not JSON", "invalid_request_error")
            return
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._error(400, "expected a JSON object with a `messages` list", "invalid_request_error")
            return
        model = body.get("model") or self.simulated.model
        if model != self.simulated.model:
            self._error(404, f"The model `{model}` does not exist (this server has {self.simulated.model})",
                        "model_not_found")
            return
        try:
            text = self.simulated.reply(body)
        except Exception as exc:  # a bug here must reach the client as a failure, not a hung request
            self._error(500, f"simulated LLM failed: {type(exc).__name__}: {exc}", "server_error")
            return
        self._send_json(200, completion_body(text, body, model))


def main(argv: list[str] | None = None) -> int:
    from evals.datasets import DEFAULT_DATA_DIR, load_dataset, make_draw
    from evals.simulated.knowledge import knowledge_for_draw

    parser = argparse.ArgumentParser(prog="python -m evals.simulated.server", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="youtube, sms, trec or goemotions")
    parser.add_argument("--draw", type=int, default=0, help="evals draw whose unseen rows give the knowledge")
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--extra-unlabeled", type=int, default=2000)
    parser.add_argument("--persona", choices=sorted(PERSONAS), default="expert")
    parser.add_argument("--decoy-rate", type=float, default=None)
    parser.add_argument("--flip-rate", type=float, default=None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    args = parser.parse_args(argv)
    data = load_dataset(args.dataset, args.data_dir)
    draw = make_draw(data, n_seeds=args.seeds, extra_unlabeled=args.extra_unlabeled, seed=args.draw)
    base = PERSONAS[args.persona]
    persona = Persona(base.name, decoy_rate=base.decoy_rate if args.decoy_rate is None else args.decoy_rate,
                      flip_rate=base.flip_rate if args.flip_rate is None else args.flip_rate)
    server = SimulatedLLMServer(knowledge_for_draw(data, draw), persona, port=args.port).start()
    print(f"listening {server.base_url} (model {server.model})", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()
        print(json.dumps(server.stats), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
