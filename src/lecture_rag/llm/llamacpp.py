"""A GGUF model run in-process by llama-cpp-python (no server to start)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

from lecture_rag.config import Structured
from lecture_rag.errors import LLMError
from lecture_rag.llm.base import (
    DEFAULT_ENV_PREFIX,
    CompleteByStreaming,
    Request,
    StreamResult,
    Tail,
    measured,
    with_structured,
)

GGUF_INSTALL_HINT = "pip install 'lecture-rag[gguf]'"


def check_gguf_file(path: Path, env_prefix: str = DEFAULT_ENV_PREFIX) -> Path:
    """Fail early, in Portuguese, on a missing or non-GGUF file (llama.cpp's own error is cryptic).

    ``env_prefix`` names the variable to fix (``LECTURE_RAG_JUDGE_LLM_`` for the judge).
    """
    path = path.expanduser()
    if not path.is_file():
        raise LLMError(
            f"arquivo de modelo GGUF não encontrado: {path}. Confira o caminho em "
            f"{env_prefix}BACKEND=gguf:/caminho/modelo.gguf."
        )
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != b"GGUF":
        raise LLMError(
            f"{path} não é um arquivo GGUF válido (cabeçalho {magic!r}). Use um modelo .gguf "
            "(por exemplo, quantizado Q4_K_M) ou um servidor compatível com OpenAI."
        )
    return path


def _require_llama_cpp(env_prefix: str = DEFAULT_ENV_PREFIX) -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise LLMError(
            f"o backend gguf precisa do llama-cpp-python, que não está instalado. Instale com "
            f"`{GGUF_INSTALL_HINT}` ou use um servidor compatível com OpenAI "
            f"({env_prefix}BACKEND=openai)."
        ) from exc
    return llama_cpp


class LlamaCppLLM(CompleteByStreaming):
    """A GGUF model run in-process by llama-cpp-python.

    The model loads on first use (a 1 GB model takes seconds; constructing
    the object only validates the file and that llama-cpp-python imports). One generation runs at a time: a
    llama.cpp context holds one sequence, so concurrent calls are serialised.
    """

    parallel_safe = False  # one llama.cpp context: concurrent callers would only queue on its lock

    def __init__(
        self,
        model_path: Path | str,
        context_window: int = 4096,
        threads: int = 0,
        seed: int | None = 42,
        structured: Structured | None = None,
        *,
        env_prefix: str = DEFAULT_ENV_PREFIX,
    ) -> None:
        self.model_path = check_gguf_file(Path(model_path), env_prefix)
        self.structured: Structured = structured or "auto"  # auto: GBNF here
        self.applies_grammar = self.structured in ("auto", "gbnf")
        self._env = env_prefix
        _require_llama_cpp(env_prefix)  # fail at configuration time, not at the first question
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

    def close(self) -> None:
        """Drop the loaded model (the next call loads it again).

        Only the reference is dropped: a generation running in another thread
        holds its own and keeps the model alive until it ends, so closing
        never frees memory under it.
        """
        with self._load_lock:
            self._llama = None

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

    def stream(self, request: Request) -> StreamResult:
        llama = self.load()
        start = time.perf_counter()
        # llama-cpp-python parses the grammar lazily, when generation starts.
        enforced = request.grammar if self.applies_grammar else None
        held = _require_llama_cpp().LlamaGrammar.from_string(enforced, verbose=False) if enforced else None
        response_format = None
        if request.schema is not None and self.structured == "json_schema":
            # llama.cpp turns it into a grammar
            response_format = {"type": "json_object", "schema": dict(request.schema)}
        applied = "json_schema" if response_format else "gbnf" if held is not None else "none"
        raw = self._generate(llama, request, held, response_format)
        return StreamResult(with_structured(measured(raw, start, self.count_tokens, lambda: 0), lambda: applied))

    def _generate(
        self, llama: Any, request: Request, grammar: Any = None, response_format: dict[str, Any] | None = None
    ) -> Generator[str, None, Tail]:
        """Run llama.cpp's streaming chat completion under the generation lock."""
        self._acquire()
        tail = Tail(model=self.model_path.name, finish_reason="unknown")
        parts: list[str] = []
        try:
            # Forget the previous prompt: reusing its KV prefix evaluates the new prompt in
            # different batches, which shifts logits enough to change greedy (and grammar-held)
            # output, so the same call would give another verdict depending on what ran before.
            llama.reset()
            chunks = llama.create_chat_completion(
                messages=list(request.messages),
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                seed=request.seed if request.seed is not None else self._seed,
                stop=list(request.stop),
                stream=True,
                grammar=grammar,
                response_format=response_format,
            )
            for chunk in self._chunks(chunks):
                choice = chunk["choices"][0]
                content = choice["delta"].get("content")
                if content:
                    parts.append(content)
                    yield content
                if choice.get("finish_reason"):
                    tail.finish_reason = str(choice["finish_reason"])
            self._fill_usage(llama, tail, "".join(parts), bool(request.stop))
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
                f"Use menos trechos ou aumente {self._env}CONTEXT_WINDOW."
            ) from exc

    def _fill_usage(self, llama: Any, tail: Tail, text: str, had_stop: bool) -> None:
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
