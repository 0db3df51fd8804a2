"""Judge prompts, output grammars and token budgets: what a judge LLM is asked, and how much fits.

Prompts are Jinja2 templates in ``templates/``; runs snapshot their hashes
(and the grammars'), so a changed prompt is a changed experiment.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import Environment

from lecture_rag.config import JudgeLLMSettings, env_var
from lecture_rag.errors import LLMError
from lecture_rag.evaluate.labels import DEFAULT_SCHEME, LabelScheme
from lecture_rag.llm import LLM, Request, chat, estimate_tokens
from lecture_rag.templating import short_hash, source_hashes, text_templates

JUDGE_ENV_PREFIX = env_var("judge_llm")
TEMPLATES = (
    "cot_format.j2",
    "answer_relevance.system.j2",
    "answer_relevance.user.j2",
    "context_relevance.system.j2",
    "context_relevance.user.j2",
    "groundedness.system.j2",
    "groundedness.user.j2",
    "auto_label.system.j2",
    "auto_label.user.j2",
)
# Chat-template markup per message (role headers, end-of-turn); real templates use 3-8 tokens.
_MESSAGE_OVERHEAD = 8
# Below this many tokens for the variable texts a judgment is meaningless.
_MIN_ROOM = 48


@dataclass(frozen=True, slots=True)
class LabelExample:
    """One answer labelled by people, shown to the automated annotator as a worked example (calibration)."""

    question: str
    answer: str
    label: str
    references: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class JudgeConfig:
    """Generation settings; deterministic by default so a rerun reproduces the verdicts.

    ``examples`` are labelled examples put into the automated annotator's
    prompt (``eval judges --examples``); none by default.
    """

    max_tokens: int = 660  # covers SCORE_GRAMMAR: 600 characters of lines plus the keys
    label_max_tokens: int = 336  # covers label_grammar's 300 characters plus the keys
    temperature: float = 0.0
    seed: int = 42
    max_claims: int = 12
    margin_tokens: int = 48
    examples: tuple[LabelExample, ...] = ()


DEFAULT_CONFIG = JudgeConfig()


def config_from_settings(settings: JudgeLLMSettings) -> JudgeConfig:
    """The judge's generation settings from ``[judge_llm]`` / ``LECTURE_RAG_JUDGE_LLM_*``."""
    return JudgeConfig(
        max_tokens=settings.max_tokens,
        label_max_tokens=settings.label_max_tokens,
        temperature=settings.temperature,
        seed=settings.seed,
    )


# --------------------------------------------------------------------------- prompts


@lru_cache(maxsize=1)
def _templates() -> Environment:
    return text_templates("lecture_rag.evaluate.judges", "templates")


def render(name: str, **values: Any) -> str:
    """Render one prompt template (public so fixtures can be re-recorded with the real prompts)."""
    return _templates().get_template(name).render(**values).strip()


def prompt_hashes(scheme: LabelScheme = DEFAULT_SCHEME) -> dict[str, str]:
    """Short hashes of the judge templates and output grammars (for ``scheme``'s labels), for run snapshots."""
    return {
        **source_hashes(_templates(), TEMPLATES),
        "grammars": short_hash(SCORE_GRAMMAR + label_grammar(scheme)),
        "schemas": short_hash(json.dumps([SCORE_SCHEMA, label_schema(scheme)], sort_keys=True)),
    }


# --------------------------------------------------------------------------- token budget

Counter = Callable[[str], int]


def counter(llm: LLM) -> Counter:
    """The model's own tokenizer when it has one, else a safe overestimate."""
    count = getattr(llm, "count_tokens", None)
    return count if callable(count) else estimate_tokens


def fit_tokens(text: str, budget: int, count: Counter) -> tuple[str, bool]:
    """``text`` cut at a word boundary to at most ``budget`` tokens; (text, was_cut).

    Cuts proportionally and re-counts, because tokens per character vary a
    lot between transcripts (numbers, names, misheard words).
    """
    if budget <= 0:
        return "", bool(text)
    n = count(text)
    if n <= budget:
        return text, False
    cut = text
    for _ in range(8):
        keep = max(int(len(cut) * budget / max(n, 1) * 0.95), 0)
        cut = cut[:keep]
        if " " in cut:
            cut = cut.rsplit(" ", 1)[0]
        n = count(cut + " …")
        if n <= budget:
            return (cut + " …" if cut else ""), True
    return "", True


def share_tokens(texts: Sequence[str], budget: int, count: Counter) -> list[tuple[str, bool]]:
    """Split ``budget`` among ``texts``: short ones keep everything, long ones share the rest equally."""
    needs = [count(t) for t in texts]
    shares = [0] * len(texts)
    left = budget
    order = sorted(range(len(texts)), key=lambda i: needs[i])
    for pos, i in enumerate(order):
        shares[i] = min(needs[i], left // (len(texts) - pos))
        left -= shares[i]
    return [(t, False) if shares[i] >= needs[i] else fit_tokens(t, shares[i], count) for i, t in enumerate(texts)]


def room_for(llm: LLM, config: JudgeConfig, max_tokens: int, system: str, user_skeleton: str) -> int:
    """Tokens left for the variable texts once the fixed prompt and the output are reserved."""
    count = counter(llm)
    fixed = count(system) + count(user_skeleton) + 2 * _MESSAGE_OVERHEAD
    room = llm.context_window - max_tokens - config.margin_tokens - fixed
    if room < _MIN_ROOM:
        raise LLMError(
            f"a janela de contexto do juiz ({llm.context_window} tokens) é pequena demais para o prompt de "
            f"avaliação mais {max_tokens} tokens de resposta. Aumente {JUDGE_ENV_PREFIX}CONTEXT_WINDOW."
        )
    return room


# The output forms the prompts ask for, as GBNF grammars. A backend that can enforce
# them (llama.cpp) makes even a small local model answer in a parseable form; the
# parser still reads free text from backends that cannot. Lines are bounded in
# characters (the seed's own CoT has ~170 of criteria and ~430 of evidence), and
# JudgeConfig's token budgets cover the bounds even at one token per character (a
# rambling small model writing "1, 2, 3, …" gets there), so the verdict always fits.
SCORE_GRAMMAR = (
    'root ::= "Criteria: " criteria "\\nSupporting Evidence: " evidence "\\nScore: " [0-3]\n'
    "criteria ::= [^\\n]{1,200}\n"
    "evidence ::= [^\\n]{1,400}\n"
)


def label_grammar(scheme: LabelScheme) -> str:
    """``Justification: …`` then ``Label: X`` with X one of the scheme's codes."""
    codes = " | ".join(json.dumps(code) for code in scheme.codes)
    return f'root ::= "Justification: " line "\\nLabel: " ({codes})\nline ::= [^\\n]{{1,300}}\n'


# The same forms as JSON schemas, for servers that hold output to a schema (``response_format``).
# The bounds are a little tighter than the grammars' so that keys, quotes and escapes fit the
# same token budgets; parsing.verdict_text turns a JSON verdict back into the text form above.
SCORE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "criteria": {"type": "string", "minLength": 1, "maxLength": 180},
        "supporting_evidence": {"type": "string", "minLength": 1, "maxLength": 380},
        "score": {"type": "integer", "enum": [0, 1, 2, 3]},
    },
    "required": ["criteria", "supporting_evidence", "score"],
    "additionalProperties": False,
}


def label_schema(scheme: LabelScheme) -> dict[str, Any]:
    """``{"justification": …, "label": X}`` with X one of the scheme's codes."""
    return {
        "type": "object",
        "properties": {
            "justification": {"type": "string", "minLength": 1, "maxLength": 280},
            "label": {"type": "string", "enum": list(scheme.codes)},
        },
        "required": ["justification", "label"],
        "additionalProperties": False,
    }


def ask(
    llm: LLM, system: str, user: str, max_tokens: int, config: JudgeConfig, grammar: str, schema: dict[str, Any]
) -> str:
    """One deterministic judge call, its form asked as a grammar and a schema; returns the raw text."""
    completion = llm.complete(
        Request(
            chat(system, user),
            max_tokens=max_tokens,
            temperature=config.temperature,
            seed=config.seed,
            grammar=grammar,
            schema=schema,
        )
    )
    return completion.text
