"""Any server speaking OpenAI's ``/v1/chat/completions`` (Ollama, vLLM, llama.cpp, LM Studio, OpenAI...)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import Any

import httpx

from lecture_rag.config import CONNECT_TIMEOUT_S, Structured
from lecture_rag.errors import LLMError
from lecture_rag.httpclient import HTTPStatusError, Names, OpenAIClient, server_root
from lecture_rag.llm.base import (
    DEFAULT_ENV_PREFIX,
    ChatMessage,
    CompleteByStreaming,
    Request,
    StreamResult,
    Tail,
    estimate_tokens,
    measured,
    with_structured,
)

# Statuses with which servers reject a request body field they do not know (vLLM: 400, some proxies: 422).
_REJECTED_FIELD = frozenset({400, 422})
# ...and a response_format they do not know: llama-cpp-python's server answers its validation error with 500.
_REJECTED_FORMAT = _REJECTED_FIELD | {500}


def response_formats(schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The two spellings of "answer with this JSON schema", most standard first.

    OpenAI, vLLM, Ollama and llama.cpp's ``llama-server`` take OpenAI's
    ``json_schema`` form; llama-cpp-python's server (and Anyscale-style APIs)
    take ``json_object`` with a ``schema``. ``strict`` is left out: OpenAI's
    strict mode refuses the length bounds that keep a verdict inside its
    token budget, and the other servers enforce the schema anyway.
    """
    return [
        {"type": "json_schema", "json_schema": {"name": "verdict", "schema": dict(schema)}},
        {"type": "json_object", "schema": dict(schema)},
    ]


class OpenAICompatibleLLM(CompleteByStreaming):
    """Chat completions with SSE streaming, through the project's one HTTP client.

    Token counts come from the stream's ``usage`` when the server honours
    ``stream_options.include_usage``; otherwise from the server's tokenizer
    endpoint (llama-cpp-python's ``/extras/tokenize/count``, llama.cpp's
    ``/tokenize``), otherwise from :func:`estimate_tokens`.
    """

    parallel_safe = True  # the server queues or batches concurrent requests

    def __init__(
        self,
        base_url: str,
        model: str = "",
        api_key: str = "",
        timeout: float = 120.0,
        retries: int = 3,
        context_window: int = 4096,
        *,
        seed: int | None = 42,
        backoff_s: float = 0.5,
        env_prefix: str = DEFAULT_ENV_PREFIX,
        max_connections: int | None = None,
        structured: Structured | None = None,
        connect_timeout: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self._http = OpenAIClient(
            base_url,
            names=Names.llm(env_prefix),
            api_key=api_key,
            model=model.strip(),
            timeout=timeout,
            retries=retries,
            backoff_s=backoff_s,
            max_connections=max_connections,
            connect_timeout=connect_timeout,
            probe_first=True,  # a dead endpoint is told in connect_timeout, not after timeout
        )
        self.base_url = self._http.base_url
        self.structured: Structured = structured or "none"
        self.applies_grammar = self.structured == "gbnf"
        # Index into response_formats() of the form this server accepted; None: not probed yet;
        # len(forms): it accepted none (``auto`` then writes free text).
        self._format: int | None = None
        self._context_window = context_window
        self._seed = seed
        self._env = env_prefix
        self._tokenizer: str | None = None
        self._tokenizer_lock = threading.Lock()
        self._stream_options = True
        self._lock = threading.Lock()

    # -- identity ---------------------------------------------------------------------

    @property
    def model(self) -> str:
        """The model id; asks ``/v1/models`` for the first one when none was configured."""
        with self._lock:
            if not self._http.model:
                self._http.model = self._first_model()
        return self._http.model

    @property
    def name(self) -> str:
        return f"openai:{self.model}"

    @property
    def context_window(self) -> int:
        return self._context_window

    def close(self) -> None:
        """Close pooled connections."""
        self._http.close()

    def probe(self) -> None:
        """Raise LLMError unless the server answers within the connect timeout (the web header's health)."""
        self._http.probe()

    def available_models(self) -> list[str]:
        """Model ids the server lists under ``/v1/models``."""
        data = self._http.get_json("/models")
        items = data.get("data", []) if isinstance(data, dict) else []
        return [str(item["id"]) for item in items if isinstance(item, dict) and "id" in item]

    def _first_model(self) -> str:
        models = self.available_models()
        if not models:
            raise LLMError(
                f"o servidor em {self.base_url} não lista nenhum modelo em /models; "
                f"defina {self._env}MODEL com o nome do modelo."
            )
        return models[0]

    # -- generation -------------------------------------------------------------------

    def stream(self, request: Request) -> StreamResult:
        """Send the request now (so connection errors surface here) and stream the body."""
        msgs = list(request.messages)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": msgs,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": True,
        }
        chosen_seed = request.seed if request.seed is not None else self._seed
        if chosen_seed is not None:
            body["seed"] = chosen_seed
        if request.stop:
            body["stop"] = list(request.stop)
        applied = "none"
        if request.grammar and self.applies_grammar:
            body["grammar"] = request.grammar  # llama.cpp's servers; other servers may reject unknown fields
            applied = "gbnf"
        start = time.perf_counter()
        if request.schema is not None and self.structured in ("auto", "json_schema"):
            response, applied = self._post_with_schema(body, request.schema)
        else:
            response = self._post_chat(body)
        raw = self._read_stream(response)
        events = measured(raw, start, self.count_tokens, lambda: self._estimate_prompt(msgs))
        return StreamResult(with_structured(events, lambda: applied), release=response.close)

    def _post_with_schema(self, body: dict[str, Any], schema: Mapping[str, Any]) -> tuple[httpx.Response, str]:
        """POST asking for ``schema`` in the first spelling the server accepts; (response, transport used).

        Each spelling is tried once, without retries, until one is accepted;
        the answer is remembered, so later calls send the accepted one with the
        usual retries. A server that accepts none gets free text under
        ``auto``; under ``json_schema`` that is an error, since the user asked
        for the schema explicitly.
        """
        forms = response_formats(schema)
        start = self._format or 0
        for index in range(start, len(forms)):
            confirmed = self._format == index
            try:
                response = self._post_chat({**body, "response_format": forms[index]}, probe=not confirmed)
            except HTTPStatusError as exc:
                if confirmed or exc.status not in _REJECTED_FORMAT:
                    raise
                continue
            self._format = index
            return response, "json_schema"
        self._format = len(forms)
        if self.structured == "json_schema":
            raise LLMError(
                f"o LLM em {self.base_url} recusou response_format com esquema JSON (nas duas formas conhecidas). "
                f"Use {self._env}STRUCTURED=auto (texto livre quando o servidor não aceita), gbnf (servidores "
                "llama.cpp) ou none."
            )
        return self._post_chat(body), "none"

    def _post_chat(self, body: dict[str, Any], *, probe: bool = False) -> httpx.Response:
        """POST asking for usage in the stream; if the server rejects the request, once more without it.

        Servers that do not know ``stream_options`` refuse the whole body with
        400/422, each in its own words, so the status decides, not the text:
        when the same request without the field is accepted, the field was the
        problem and is not sent again; when it is refused too, that second
        refusal (the real problem) is what the user sees.
        """
        if self._stream_options:
            try:
                return self._http.send(
                    "POST", "/chat/completions", body={**body, "stream_options": {"include_usage": True}}, stream=True
                )
            except HTTPStatusError as exc:
                if exc.status not in _REJECTED_FIELD:
                    raise
            response = self._http.send("POST", "/chat/completions", body=body, stream=True)
            self._stream_options = False
            return response
        return self._http.send("POST", "/chat/completions", body=body, stream=True)

    def _read_stream(self, response: httpx.Response) -> Generator[str, None, Tail]:
        """Yield content deltas from an SSE body (or a plain JSON body, if the server ignored stream)."""
        tail = Tail(model=self._http.model, finish_reason="unknown")
        try:
            if response.headers.get("content-type", "").startswith("application/json"):
                yield from self._read_json_body(response, tail)
                return tail
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue  # comments/pings (":"), event names, blank separators
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                yield from self._apply_chunk(self._parse_chunk(data), tail)
        except httpx.TimeoutException as exc:
            raise self._http.timeout_error() from exc
        except httpx.TransportError as exc:
            raise self._http.stream_error(exc) from exc
        finally:
            response.close()
        return tail

    def _parse_chunk(self, data: str) -> dict[str, Any]:
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise LLMError(f"o LLM em {self.base_url} enviou um evento inválido: {data[:200]!r}") from exc
        if not isinstance(chunk, dict):
            raise LLMError(f"o LLM em {self.base_url} enviou um evento inesperado: {data[:200]!r}")
        if chunk.get("error"):
            err = chunk["error"]
            detail = err.get("message", err) if isinstance(err, dict) else err
            raise LLMError(f"o LLM em {self.base_url} interrompeu a resposta com erro: {detail}")
        return chunk

    @staticmethod
    def _apply_chunk(chunk: dict[str, Any], tail: Tail) -> Iterator[str]:
        """Record model/usage/finish from one chunk and yield its content, if any."""
        tail.model = str(chunk.get("model") or tail.model)
        usage = chunk.get("usage")
        if isinstance(usage, dict) and usage.get("completion_tokens") is not None:
            tail.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            tail.completion_tokens = int(usage["completion_tokens"])
        for choice in (chunk.get("choices") or [])[:1]:
            delta = choice.get("delta") or choice.get("message") or {}
            content = delta.get("content")
            if content:
                yield str(content)
            if choice.get("finish_reason"):
                tail.finish_reason = str(choice["finish_reason"])

    def _read_json_body(self, response: httpx.Response, tail: Tail) -> Iterator[str]:
        try:
            chunk = json.loads(response.read())
        except ValueError as exc:
            raise LLMError(f"o LLM em {self.base_url} respondeu algo que não é JSON nem SSE.") from exc
        yield from self._apply_chunk(self._parse_chunk(json.dumps(chunk)), tail)

    def _estimate_prompt(self, messages: Sequence[ChatMessage]) -> int:
        """Prompt tokens when the server reports no usage: content plus ~4 template tokens a turn."""
        joined = "\n".join(f"{m['role']}\n{m['content']}" for m in messages)
        return self.count_tokens(joined) + 4 * len(messages)

    # -- token counting ---------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """The server's tokenizer when it has one, else :func:`estimate_tokens`: decided once per process.

        Deterministic by design: the choice is made at the first count (under
        a lock, whatever the threads) from what the server *is*, never from a
        slow answer, and then every count uses it. A server with a tokenizer
        that stops answering fails the count loudly (LLMError, after the
        client's timeout and retries) instead of estimating this one count:
        a run must cut the same prompt the same way in every process.
        """
        if not text:
            return 0
        kind = self._counter()
        if kind == "estimate":
            return estimate_tokens(text)
        count = self._server_count(kind, text)
        if count is None:
            raise LLMError(
                f"o tokenizador do servidor em {server_root(self.base_url)} deixou de responder a contagem de "
                "tokens; confira o servidor e rode de novo (nada é estimado no meio de uma rodada)."
            )
        return count

    def _counter(self) -> str:
        """Which counter this process uses: probed once, at the first count, under a lock."""
        with self._tokenizer_lock:
            if self._tokenizer is None:
                found = (kind for kind in ("extras", "llama.cpp") if self._server_count(kind, "Olá") is not None)
                self._tokenizer = next(found, "estimate")
            return self._tokenizer

    @property
    def tokenizer(self) -> str:
        """Counter in use: ``extras``, ``llama.cpp``, ``estimate``, or ``unprobed`` before any count."""
        return self._tokenizer or "unprobed"

    def _server_count(self, kind: str, text: str) -> int | None:
        """Ask the server to tokenize; None if it has no such endpoint (an unreachable one raises LLMError)."""
        root = server_root(self.base_url)
        if kind == "extras":
            url, body = f"{root}/extras/tokenize/count", {"input": text}
        else:
            url, body = f"{root}/tokenize", {"content": text}
        data = self._http.post_extra(url, body)
        if isinstance(data, dict) and isinstance(data.get("count"), int):
            return int(data["count"])
        if isinstance(data, dict) and isinstance(data.get("tokens"), list):
            return len(data["tokens"])
        return None
