"""Is the answer LLM usable? Which one is configured, does it answer, how fast, and what to do if not.

Shared by ``lecture-rag llm check`` and ``GET /api/health?llm=true`` so both
say the same thing. The probe is one tiny generation (a few tokens), which
is enough to time the first token and to surface the backend's own error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from lecture_rag.config import LLMSettings, env_var
from lecture_rag.errors import LLMError
from lecture_rag.llm.base import LLM, Request
from lecture_rag.llm.openai import OpenAICompatibleLLM
from lecture_rag.llm.runners import Runner, detect_runners

PROBE_TOKENS = 8
PROBE = Request(
    [
        {"role": "system", "content": "Responda em português, em poucas palavras."},
        {"role": "user", "content": "Diga apenas: pronto."},
    ],
    max_tokens=PROBE_TOKENS,
)
README_HINT = "Veja a seção 'Plugging in an LLM' em docs/llms.md."


@dataclass(slots=True)
class LLMCheck:
    """What a check found; ``answers`` is None when no LLM is configured (extractive answers)."""

    backend: str
    model: str = ""
    answers: bool | None = None
    first_token_s: float | None = None
    total_s: float | None = None
    reply: str = ""
    error: str = ""
    advice: str = ""
    detected: list[Runner] = field(default_factory=list)

    @property
    def configured(self) -> bool:
        return self.answers is not None or bool(self.error)


def check_llm(settings: LLMSettings, llm: LLM | None, *, error: str = "", probe_runners: bool = True) -> LLMCheck:
    """Check ``llm`` (built from ``settings``; None = none configured, or ``error`` when it could not be built)."""
    detected = detect_runners() if probe_runners else []
    result = LLMCheck(backend=settings.backend.strip() or "none", detected=detected)
    if error:
        result.error = error
        result.advice = f"Corrija a configuração conforme a mensagem acima. {README_HINT}"
        return result
    if llm is None:
        result.advice = _advice_unconfigured(detected)
        return result
    try:
        result.model = llm.name
        started = time.perf_counter()
        with llm.stream(PROBE) as stream:
            completion = stream.finish()
        result.first_token_s = completion.first_token_s
        result.total_s = time.perf_counter() - started
        result.reply = completion.text.strip()[:80]
        result.answers = bool(completion.text.strip())
        if not result.answers:
            result.advice = "O modelo respondeu vazio: confira o modelo e o modelo de chat (chat template) do servidor."
    except LLMError as exc:
        result.answers = False
        result.error = str(exc)
        result.advice = f"O LLM configurado não respondeu: siga a mensagem acima. {README_HINT}"
    return result


def reachable(llm: LLM) -> bool:
    """Whether ``llm`` can be asked now, without generating: its server answers within its connect timeout.

    Cheaper than :func:`check_llm` (no generation), so a page can ask it every
    few seconds; an in-process model is always there once loaded.
    """
    if not isinstance(llm, OpenAICompatibleLLM):
        return True
    try:
        llm.probe()
    except LLMError:
        return False
    return True


_BACKEND, _BASE_URL, _MODEL = (env_var("llm", key) for key in ("backend", "base_url", "model"))


def _advice_unconfigured(detected: list[Runner]) -> str:
    if detected:
        runner = detected[0]
        models = ", ".join(runner.models[:5]) or "nenhum modelo carregado"
        return (
            f"Nenhum LLM configurado (respostas extrativas). Encontrei {runner.name} em {runner.base_url} "
            f"(modelos: {models}). Para usá-lo: {_BACKEND}=auto, ou {_BACKEND}=openai "
            f"com {_BASE_URL}={runner.base_url} e {_MODEL}=<modelo>."
        )
    return (
        "Nenhum LLM configurado: as respostas são extrativas (trechos das aulas). Para respostas redigidas, "
        "rode um servidor compatível com OpenAI (Ollama, llama.cpp, vLLM, LM Studio) e defina "
        f"{_BACKEND}=auto, ou openai com {_BASE_URL}/{_MODEL}. {README_HINT}"
    )
