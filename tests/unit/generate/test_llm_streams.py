"""Streams that are never read give their connection back; a rejected ``stream_options`` is retried by status."""

from __future__ import annotations

import gc

from lecture_rag.llm import OpenAICompatibleLLM, Request, estimate_tokens
from tests.support.servers import Reply, ScriptedServer

MESSAGES = [{"role": "user", "content": "Olá?"}]


def test_a_stream_closed_before_reading_releases_its_connection() -> None:
    """With a pool of one connection, a second request only gets through if the first gave it back."""
    with ScriptedServer([Reply()]) as server:
        llm = OpenAICompatibleLLM(server.base_url, model="m", timeout=2, retries=0, max_connections=1)
        unread = llm.stream(Request(MESSAGES, max_tokens=8))  # type: ignore[arg-type]
        unread.close()  # never iterated
        assert llm.complete(Request(MESSAGES, max_tokens=8)).text == "Olá, mundo!"  # type: ignore[arg-type]
        llm.close()
    assert len(server.hits) == 2


def test_a_stream_dropped_without_close_releases_its_connection() -> None:
    with ScriptedServer([Reply()]) as server:
        llm = OpenAICompatibleLLM(server.base_url, model="m", timeout=2, retries=0, max_connections=1)
        llm.stream(Request(MESSAGES, max_tokens=8))  # type: ignore[arg-type]  # result dropped on the floor
        gc.collect()
        assert llm.complete(Request(MESSAGES, max_tokens=8)).text == "Olá, mundo!"  # type: ignore[arg-type]
        llm.close()


def test_stream_options_rejected_in_other_words_is_dropped_once() -> None:
    """vLLM and proxies reject the field with messages that never say "stream_options"."""
    rejected = Reply(status=400, body={"error": {"message": "Unrecognized request argument supplied: include_usage"}})
    with ScriptedServer([rejected, Reply(), Reply()]) as server:
        llm = OpenAICompatibleLLM(server.base_url, model="m", timeout=5, retries=0)
        first = llm.complete(Request(MESSAGES, max_tokens=8))  # type: ignore[arg-type]
        llm.complete(Request(MESSAGES, max_tokens=8))  # type: ignore[arg-type]
    assert first.text == "Olá, mundo!" and first.completion_tokens == estimate_tokens("Olá, mundo!")
    assert [("stream_options" in hit.body) for hit in server.hits] == [True, False, False]


def test_a_request_refused_for_another_reason_reports_that_reason() -> None:
    """When the request without the field is refused too, the user sees the real problem, once."""
    too_long = Reply(status=400, body={"error": {"message": "prompt is longer than the context window"}})
    with ScriptedServer([too_long]) as server:
        llm = OpenAICompatibleLLM(server.base_url, model="m", timeout=5, retries=3)
        try:
            llm.complete(Request(MESSAGES, max_tokens=8))  # type: ignore[arg-type]
        except Exception as exc:
            message = str(exc)
        else:
            raise AssertionError("a refused request must raise")
    assert "HTTP 400" in message and "context window" in message
    assert len(server.hits) == 2  # with the field, then without it; a 400 is not retried beyond that
