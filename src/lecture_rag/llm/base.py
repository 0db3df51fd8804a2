"""The LLM protocol, its capability flags, and the streaming/timing machinery both backends share.

Answer quality depends entirely on the LLM the user plugs in, so plugging one
in must be trivial and failures must say what to fix. Backends always stream
internally: that is the only way to measure time to first token honestly,
and :meth:`LLM.complete` is just a drained stream. Output is deterministic
by default (temperature 0, fixed seed) so evaluations can be repeated.

Callers never switch on a backend's class: what differs between backends is
said by capability flags on the protocol (:attr:`LLM.applies_grammar`,
:attr:`LLM.parallel_safe`). What a caller asks for travels as one value, a
:class:`Request` (as httpx's transports take one ``Request``), so a wrapper
passes it on untouched and a new option is added in one place.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Literal, Protocol, Self, TypedDict, runtime_checkable

from lecture_rag.config import Structured, env_var

CHARS_PER_TOKEN_ESTIMATE = 3.0
#: Prefix of the variables that configure the answer LLM, named in its error messages.
DEFAULT_ENV_PREFIX = env_var("llm")


Role = Literal["system", "user", "assistant"]


class ChatMessage(TypedDict):
    """One chat turn, in the OpenAI wire format so it is sent as-is."""

    role: Role
    content: str


def chat(system: str, user: str) -> list[ChatMessage]:
    """The usual two-turn conversation: instructions, then the user's text."""
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


@dataclass(frozen=True)
class Request:
    """One generation asked of an LLM: the conversation and how to generate it.

    The one place the generation options are spelled. Defaults make output
    deterministic (temperature 0; ``seed`` None means the backend's
    configured seed). ``grammar`` (GBNF) and ``schema`` (JSON schema) are two
    spellings of the output form a caller wants; the backend holds the output
    to one of them as its ``structured`` transport says (llama.cpp
    in-process: the grammar; a server: ``response_format`` with the schema
    where it accepts one) and ignores them otherwise, so callers still parse
    the text defensively. A bad request fails here, before any backend.
    """

    messages: Sequence[ChatMessage]
    max_tokens: int
    temperature: float = 0.0
    seed: int | None = None
    stop: Sequence[str] = ()
    grammar: str | None = None
    schema: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        # Tuples, so a request handed to another thread or a wrapper cannot change under it.
        object.__setattr__(self, "messages", tuple(self.messages))
        object.__setattr__(self, "stop", tuple(self.stop))
        if not self.messages:
            raise ValueError("messages must not be empty")
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")


@dataclass(frozen=True)
class Completion:
    """A finished generation plus the numbers reports need.

    ``tokens_per_s`` is the decode rate (tokens after the first, divided by
    the time after the first), the figure that predicts how long an answer
    takes; prompt processing shows up in ``first_token_s`` instead.
    ``usage_exact`` is False when token counts were estimated because the
    backend did not report them. ``structured`` says how the output's form
    was held: ``json_schema``, ``gbnf`` or ``none`` (free text).
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
    structured: str = "none"


class StreamResult(Iterator[str]):
    """Text deltas as they arrive; ``.completion`` once exhausted.

    Iterate it to the end (or call :meth:`finish`). Abandoning it half-way is
    allowed: call :meth:`close` (or use ``with``) so the HTTP connection or
    the in-process model is released at once. ``release`` frees what the
    backend took *before* the first delta (an HTTP response already open):
    closing a generator that never started runs none of its cleanup, so a
    stream closed, or dropped, without being iterated must release it here.
    """

    def __init__(self, events: Generator[str, None, Completion], release: Callable[[], None] | None = None) -> None:
        self._events = events
        self._release = release
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
        """Stop generating and release the connection or model (idempotent)."""
        try:
            self._events.close()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()

    def __del__(self) -> None:
        # A stream dropped without close() must not keep a pooled connection checked out.
        with contextlib.suppress(Exception):
            self.close()

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
    # The structured-output transport configured: auto, json_schema, gbnf or none.
    structured: Structured
    # Whether several threads may generate at once (an HTTP server queues or batches them;
    # an in-process model has one context and serialises them).
    parallel_safe: bool

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes with this model's tokenizer (or a safe overestimate)."""
        ...

    def complete(self, request: Request) -> Completion:
        """Generate the whole answer."""
        ...

    def stream(self, request: Request) -> StreamResult:
        """Generate, yielding text deltas; the completion is on the result afterwards."""
        ...

    def close(self) -> None:
        """Release what the backend holds (pooled connections, the loaded model); idempotent."""
        ...


# --------------------------------------------------------------------------- shared timing


@dataclass
class Tail:
    """What a backend knows once its raw stream ends; None counts get estimated."""

    model: str
    finish_reason: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    exact: bool = True


def decode_rate(tokens: int, first_s: float, total_s: float) -> float:
    decode_s = total_s - first_s
    if tokens > 1 and decode_s > 0:
        return (tokens - 1) / decode_s
    return tokens / total_s if total_s > 0 else 0.0


def with_structured(raw: Generator[str, None, Completion], how: Callable[[], str]) -> Generator[str, None, Completion]:
    """``raw``'s deltas, and its completion marked with the transport ``how()`` names once it is known."""
    completion = yield from raw
    return replace(completion, structured=how())


def measured(
    raw: Generator[str, None, Tail],
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
                tail: Tail = stop.value
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
        tokens_per_s=decode_rate(completion_tokens, first_s, total),
        finish_reason=tail.finish_reason,
        usage_exact=exact,
    )


def estimate_tokens(text: str) -> int:
    """Conservative token estimate (≈3 chars/token) for when no tokenizer is reachable.

    Real tokenizers give ~3.5-4.5 chars/token for Portuguese and English, so
    dividing by 3 overestimates: prompts built on it never overflow.
    """
    return math.ceil(len(text) / CHARS_PER_TOKEN_ESTIMATE) if text else 0


class CompleteByStreaming:
    """What both backends share: ``complete`` drains the stream (so first-token time is measured), ``with`` closes."""

    def stream(self, request: Request) -> StreamResult:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def complete(self, request: Request) -> Completion:
        return self.stream(request).finish()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Metered:
    """An LLM that counts what goes through :meth:`complete`: calls, tokens, seconds, and the transport used.

    Judges are measured on cost as well as on agreement; wrapping the judge's
    LLM for one judgment reads that cost without every judge threading
    completions back to its caller. One meter per judgment (not shared across
    threads), over a backend that may itself be shared.
    """

    def __init__(self, inner: LLM) -> None:
        self.inner = inner
        self.applies_grammar = inner.applies_grammar
        self.parallel_safe = inner.parallel_safe
        self.structured = inner.structured
        self.calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.seconds = 0.0
        self.transports: list[str] = []

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def context_window(self) -> int:
        return self.inner.context_window

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def complete(self, request: Request) -> Completion:
        done = self.inner.complete(request)
        self.calls += 1
        self.prompt_tokens += done.prompt_tokens
        self.completion_tokens += done.completion_tokens
        self.seconds += done.total_s
        self.transports.append(done.structured)
        return done

    def stream(self, request: Request) -> StreamResult:
        """Passed through unmetered: judges call :meth:`complete`."""
        return self.inner.stream(request)

    def close(self) -> None:
        """Closes the backend: a meter owns nothing of its own (judges never close theirs)."""
        self.inner.close()

    @property
    def transport(self) -> str:
        """The transports the metered calls used (one name, or several joined by '+')."""
        return "+".join(dict.fromkeys(self.transports))
