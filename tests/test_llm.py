"""The LLM layer through the real openai client against a real scripted HTTP server."""
from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from lfagent.errors import BudgetExhausted, LLMError
from lfagent.llm import (Budget, ChatMessage, ChatRequest, ChatResponse, LLMCallError,
                         LLMFailure, Prices, ResponseCache, make_llm)
from lfagent.llm.base import canonical_request_key
from lfagent.llm.local import LocalLLM
from lfagent.llm.openai_compat import OpenAICompatLLM, RetryPolicy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm_server import HOSTILE_CODE_REPLY, Fault, Reply, ScriptedLLMServer  # noqa: E402

FAST_RETRY = RetryPolicy(max_attempts=3, backoff_base=0.001, backoff_max=0.01)


@pytest.fixture
def server():
    with ScriptedLLMServer() as srv:
        yield srv


def client_for(srv: ScriptedLLMServer, **options) -> OpenAICompatLLM:
    options.setdefault("retry", FAST_RETRY)
    options.setdefault("timeout", 5.0)
    return OpenAICompatLLM("test-model", base_url=srv.base_url, api_key="sk-test", **options)


def ask(text: str, **options) -> ChatRequest:
    return ChatRequest.from_prompt(text, **options)


def test_success_returns_text_usage_and_sends_the_request_fields(server):
    server.push("spam words: free, win")
    with client_for(server) as llm:
        request = ChatRequest(messages=[ChatMessage(role="system", content="be terse"),
                                        ChatMessage(role="user", content="list spam words")],
                              temperature=0.7, max_tokens=33, seed=11)
        response = llm.chat(request)
    assert response.text == "spam words: free, win"
    assert response.cached is False and response.model == "test-model"
    assert response.finish_reason == "stop"
    assert response.prompt_tokens == 5 and response.completion_tokens == 4  # server counts words
    sent = server.requests[0]
    assert sent["model"] == "test-model" and sent["temperature"] == 0.7
    assert sent["max_tokens"] == 33 and sent["seed"] == 11
    assert sent["messages"] == [{"role": "system", "content": "be terse"},
                                {"role": "user", "content": "list spam words"}]
    assert "response_format" not in sent


def test_json_schema_is_sent_as_response_format(server):
    schema = {"type": "object", "properties": {"keywords": {"type": "array"}}}
    server.push('{"keywords": ["free"]}')
    with client_for(server) as llm:
        assert json.loads(llm.chat(ask("kw?", json_schema=schema)).text) == {"keywords": ["free"]}
    assert server.requests[0]["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}


def test_server_rejecting_json_schema_falls_back_to_plain_text():
    schema = {"type": "object"}
    with ScriptedLLMServer(reject_response_format=True, default_reply="{}") as srv:
        with client_for(srv) as llm:
            assert llm.chat(ask("one", json_schema=schema)).text == "{}"
            assert llm.schema_supported is False
            llm.chat(ask("two", json_schema=schema))
    with_format = ["response_format" in body for body in srv.requests]
    assert with_format == [True, False, False]  # rejected once, then never sent again


@pytest.mark.parametrize("fault", [Fault("429", retry_after=0.001), Fault("500"),
                                   Fault("garbage"), Fault("truncated")])
def test_transient_failures_are_retried_then_succeed(server, fault):
    server.push(fault, fault, "finally")
    with client_for(server) as llm:
        response = llm.chat(ask("hi"))
        usage = llm.usage()
    assert response.text == "finally"
    assert server.chat_count == 3
    assert usage.calls == 1 and usage.failed_calls == 0  # one logical call, three attempts


def test_timeout_is_retried_then_succeeds(server):
    server.push(Fault("slow", delay=3.0), "quick")
    with client_for(server, timeout=0.3) as llm:
        assert llm.chat(ask("hi")).text == "quick"
    assert server.chat_count == 2


def test_ctrl_c_reaches_a_call_waiting_on_a_slow_server(server):
    import signal
    import threading
    import time

    # The kernel may hand SIGINT to any thread; here it goes to a helper thread, never to the waiting one.
    server.push(Reply("too late", delay=20.0))
    timer = threading.Timer(1.0, lambda: signal.pthread_kill(threading.get_ident(), signal.SIGINT))
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # pytest may run with SIGINT ignored
    try:
        with client_for(server, timeout=30.0) as llm:
            started = time.monotonic()
            timer.start()
            with pytest.raises(KeyboardInterrupt):
                llm.chat(ask("hi"))
            assert time.monotonic() - started < 5, "Ctrl-C waited for the LLM to answer"
            timer.join()
    finally:
        signal.signal(signal.SIGINT, previous)


def test_retry_after_header_sets_the_wait(server):
    server.push(Fault("429", retry_after=0.05), Fault("500"), "ok")
    with client_for(server, retry=RetryPolicy(max_attempts=3, backoff_base=0.02)) as llm:
        waits: list[float] = []

        async def record_sleep(seconds: float) -> None:
            waits.append(seconds)

        llm._sleep = record_sleep
        assert llm.chat(ask("hi")).text == "ok"
    assert waits[0] == pytest.approx(0.05)        # Retry-After honoured
    assert 0.01 <= waits[1] <= 0.04               # then exponential backoff with jitter


def test_backoff_grows_is_capped_and_reproducible():
    policy = RetryPolicy(backoff_base=1.0, backoff_max=5.0, max_retry_after=30.0)
    delays = [policy.delay(a, None, random.Random(3)) for a in range(1, 6)]
    assert delays == [policy.delay(a, None, random.Random(3)) for a in range(1, 6)]
    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(5.0, 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert policy.delay(1, 120.0, random.Random(0)) == 30.0  # Retry-After capped


def test_gives_up_after_max_attempts_with_a_clear_error(server):
    server.fail_next("500", times=5)
    with client_for(server) as llm:
        with pytest.raises(LLMCallError) as caught:
            llm.chat(ask("hi"))
        assert llm.usage().failed_calls == 1
    failure = caught.value.failure
    assert failure.kind == "server_error" and failure.attempts == 3
    assert failure.status_code == 500
    assert "gave up after 3 attempts" in str(caught.value) and "HTTP 500" in str(caught.value)
    assert server.chat_count == 3


def test_rate_limit_exhaustion_keeps_retry_after(server):
    server.fail_next("429", times=3, retry_after=0.001)
    with client_for(server) as llm:
        with pytest.raises(LLMCallError) as caught:
            llm.chat(ask("hi"))
    assert caught.value.failure.kind == "rate_limit"
    assert caught.value.retry_after == pytest.approx(0.001)


def test_401_is_a_clear_error_without_retries(server):
    server.push(Fault("401"))
    with client_for(server) as llm:
        with pytest.raises(LLMError, match="check OPENAI_API_KEY") as caught:
            llm.chat(ask("hi"))
    assert caught.value.failure.kind == "auth"
    assert server.chat_count == 1


def test_unknown_model_404_names_the_model_and_server(server):
    with OpenAICompatLLM("gpt-9-ultra", base_url=server.base_url, api_key="k",
                         retry=FAST_RETRY) as llm:
        with pytest.raises(LLMError) as caught:
            llm.chat(ask("hi"))
    message = str(caught.value)
    assert "'gpt-9-ultra' not found" in message and server.base_url in message
    assert server.chat_count == 1


def test_fatal_error_in_chat_many_raises_instead_of_failing_each(server):
    server.push(Fault("401"))
    with client_for(server, max_concurrency=1) as llm:
        with pytest.raises(LLMError, match="OPENAI_API_KEY"):
            llm.chat_many([ask("a"), ask("b")])


def test_garbage_and_truncated_bodies_become_failures_not_crashes(server):
    server.responder = lambda body: (Fault("garbage") if "bad" in body["messages"][-1]["content"]
                                     else Fault("truncated") if "cut" in body["messages"][-1]["content"]
                                     else "fine")
    with client_for(server, max_concurrency=1) as llm:
        results = llm.chat_many([ask("good 1"), ask("bad"), ask("cut"), ask("good 2")])
    assert [r.text for r in results if isinstance(r, ChatResponse)] == ["fine", "fine"]
    assert isinstance(results[1], LLMFailure) and results[1].kind == "bad_response"
    assert isinstance(results[2], LLMFailure) and results[2].kind == "bad_response"
    assert results[1].attempts == 3 and "not a chat completion" in results[1].message


def test_cache_hit_returns_identical_text_without_a_second_request(server, tmp_path):
    server.responder = lambda body: f"reply #{len(server.requests)}"
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with client_for(server, cache=cache) as llm:
        first = llm.chat(ask("same question", seed=1))
        second = llm.chat(ask("same question", seed=1))
        other_seed = llm.chat(ask("same question", seed=2))
        usage = llm.usage()
    assert first.cached is False and second.cached is True
    assert second.text == first.text == "reply #1"
    assert other_seed.text == "reply #2" and server.chat_count == 2
    assert usage.calls == 2 and usage.cached_calls == 1
    # A new process (new cache object) on the same file still hits; another server does not.
    with client_for(server, cache=ResponseCache(tmp_path / "cache.sqlite")) as llm:
        assert llm.chat(ask("same question", seed=1)).text == "reply #1"
    assert server.chat_count == 2
    with ScriptedLLMServer(default_reply="other server") as other:
        with client_for(other, cache=ResponseCache(tmp_path / "cache.sqlite")) as llm:
            assert llm.chat(ask("same question", seed=1)).text == "other server"


def test_cache_key_covers_every_request_field():
    base = ask("q", temperature=0.2, max_tokens=10, seed=1)
    variants = [ask("q2", temperature=0.2, max_tokens=10, seed=1),
                ask("q", temperature=0.3, max_tokens=10, seed=1),
                ask("q", temperature=0.2, max_tokens=11, seed=1),
                ask("q", temperature=0.2, max_tokens=10, seed=None),
                ask("q", temperature=0.2, max_tokens=10, seed=1, json_schema={"type": "object"}),
                ask("q", temperature=0.2, max_tokens=10, seed=1, model="m2"),
                ask("q", system="s", temperature=0.2, max_tokens=10, seed=1)]
    keys = {canonical_request_key(r, "http://a/v1") for r in [base, *variants]}
    assert len(keys) == len(variants) + 1
    assert canonical_request_key(base, "http://a/v1") != canonical_request_key(base, "http://b/v1")
    assert canonical_request_key(base, "ns") == canonical_request_key(base.model_copy(), "ns")


def test_budget_stops_calls_and_cached_answers_stay_free(server):
    budget = Budget(max_calls=2, prices=Prices(prompt_per_million=1e6, completion_per_million=0))
    with client_for(server, budget=budget, cache=ResponseCache()) as llm:
        llm.chat(ask("one"))
        llm.chat(ask("two"))
        assert llm.chat(ask("one")).cached is True   # free: no budget needed
        with pytest.raises(BudgetExhausted, match="2 of 2 calls"):
            llm.chat(ask("three"))
    assert server.chat_count == 2
    summary = budget.summary()
    assert summary.calls == 2 and summary.cached_calls == 1
    assert summary.cost_usd == pytest.approx(summary.prompt_tokens)  # $1 per prompt token


def test_token_budget_stops_calls(server):
    server.default_reply = "a reply of six words here"
    with client_for(server, budget=Budget(max_tokens=10)) as llm:
        llm.chat(ask("four words long prompt"))  # 4 + 6 = 10 tokens
        with pytest.raises(BudgetExhausted, match="token budget"):
            llm.chat(ask("more"))


def test_chat_many_returns_budget_failures_in_place(server):
    with client_for(server, budget=Budget(max_calls=2), max_concurrency=1) as llm:
        results = llm.chat_many([ask(f"q{i}") for i in range(4)])
    kinds = [r.kind if isinstance(r, LLMFailure) else "ok" for r in results]
    assert kinds == ["ok", "ok", "budget", "budget"]
    assert server.chat_count == 2


def test_concurrency_limit_is_respected(server):
    server.responder = lambda body: Reply(body["messages"][-1]["content"].upper(), delay=0.15)
    with client_for(server, max_concurrency=2) as llm:
        results = llm.chat_many([ask(f"q{i}") for i in range(6)])
    assert [r.text for r in results] == [f"Q{i}" for i in range(6)]  # order kept
    assert server.max_in_flight == 2


def test_hooks_see_every_response_and_failure(server):
    seen: list[tuple[str, bool]] = []
    failures: list[str] = []
    server.push("a", Fault("500"), Fault("500"), Fault("500"))
    with client_for(server, cache=ResponseCache(),
                    on_response=lambda req, resp: seen.append((resp.text, resp.cached)),
                    on_failure=lambda req, fail: failures.append(fail.kind)) as llm:
        llm.chat(ask("x"))
        llm.chat(ask("x"))
        with pytest.raises(LLMCallError):
            llm.chat(ask("y"))
    assert seen == [("a", False), ("a", True)]
    assert failures == ["server_error"]


def test_async_api_works_inside_a_caller_event_loop(server):
    server.responder = lambda body: body["messages"][-1]["content"][::-1]

    async def main(llm):
        single = await llm.achat(ask("abc"))
        many = await llm.achat_many([ask("xy"), ask("z")])
        return single, many

    with client_for(server) as llm:
        single, many = asyncio.run(main(llm))
    assert single.text == "cba" and [r.text for r in many] == ["yx", "z"]


def test_hostile_code_reply_is_returned_verbatim_never_run(server, tmp_path):
    server.push(HOSTILE_CODE_REPLY)
    with client_for(server) as llm:
        assert llm.chat(ask("write an LF")).text == HOSTILE_CODE_REPLY


def test_closed_llm_refuses_calls(server):
    llm = client_for(server)
    llm.chat(ask("hi"))
    llm.close()
    llm.close()  # idempotent
    with pytest.raises(LLMError, match="closed"):
        llm.chat(ask("hi"))


def test_unreachable_server_is_a_connection_failure():
    with OpenAICompatLLM("m", base_url="http://127.0.0.1:9/v1", api_key="k",
                         retry=RetryPolicy(max_attempts=2, backoff_base=0.001)) as llm:
        with pytest.raises(LLMCallError, match="cannot reach http://127.0.0.1:9/v1") as caught:
            llm.chat(ask("hi"))
    assert caught.value.failure.kind == "connection" and caught.value.failure.attempts == 2


def test_make_llm_parses_specs(monkeypatch, server):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert make_llm("none") is None
    auto = make_llm("auto")
    assert isinstance(auto, LocalLLM) and not auto.is_running  # lazy: nothing loaded yet
    auto.close()
    with pytest.raises(LLMError, match="OPENAI_API_KEY"):
        make_llm("openai:gpt-4o-mini")
    with pytest.raises(LLMError, match="unknown --llm"):
        make_llm("anthropic:claude")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    with make_llm("auto") as llm:  # no model named: the server's /v1/models decides
        assert isinstance(llm, OpenAICompatLLM) and llm.base_url == server.base_url
        assert llm.chat(ask("hi")).model == "test-model" and llm.model == "test-model"
    assert "GET /v1/models" in server.paths
    with make_llm("openai:test-model", retry=FAST_RETRY) as llm:
        assert llm.model == "test-model" and llm.chat(ask("hi")).text == "OK"


def test_local_with_a_missing_file_fails_clearly(tmp_path):
    with make_llm(f"local:{tmp_path / 'nope.gguf'}") as llm:
        with pytest.raises(LLMError, match="does not exist.*--llm openai:MODEL"):
            llm.chat(ask("hi"))
    with make_llm("local:no-such-model") as llm:
        with pytest.raises(LLMError, match="unknown local model"):
            llm.chat(ask("hi"))


def test_scripted_server_runs_standalone_with_a_script_file(tmp_path):
    script = {"rules": [{"contains": "spam", "reply": "SPAM RULE"}],
              "replies": ["first"], "default": "fallback"}
    path = tmp_path / "script.json"
    path.write_text(json.dumps(script))
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("llm_server.py")),
                             "--port", "0", "--script", str(path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        base_url = proc.stdout.readline().split()[-1]
        models = json.load(urllib.request.urlopen(base_url + "/models", timeout=5))
        assert models["object"] == "list"
        with OpenAICompatLLM("any-model", base_url=base_url, api_key="k") as llm:
            texts = [llm.chat(ask(q)).text for q in ("hello", "is this spam?", "hello again")]
        assert texts == ["first", "SPAM RULE", "fallback"]
    finally:
        proc.terminate()
        proc.wait(timeout=5)
