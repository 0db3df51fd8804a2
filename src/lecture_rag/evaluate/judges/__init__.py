"""LLM judges in the TruLens chain-of-thought form, behind one registry and one dispatch path.

The reference system shows, per answer, an Answer Relevance score with the
judge's reasoning (``Criteria: … Supporting Evidence: … Score: 3``) on a 0-3
scale normalised to 0-1. :data:`JUDGES` registers that judge and three
companions (context relevance, groundedness, and a predicted annotator
label); :func:`judge_answer` is how every caller (``lecture-rag run``, the
tests) asks for judgments of one answer, so what is tested is what runs.

* :mod:`.parsing` reads verdicts; :mod:`.prompting` holds prompts, output
  grammars and token budgets; :mod:`.verdicts` the four judges.
* :mod:`.protocol`: the :class:`~.protocol.Judge` protocol ``eval judges``
  scores, which an LLM judge (these prompts) and a file of verdicts implement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from lecture_rag.errors import LectureRagError
from lecture_rag.evaluate.judges.parsing import (
    MAX_SCORE,
    normalise,
    parse_label_output,
    parse_score_output,
    verdict_text,
)
from lecture_rag.evaluate.judges.prompting import (
    DEFAULT_CONFIG,
    JUDGE_ENV_PREFIX,
    SCORE_GRAMMAR,
    SCORE_SCHEMA,
    JudgeConfig,
    LabelExample,
    config_from_settings,
    fit_tokens,
    label_grammar,
    label_schema,
    prompt_hashes,
    render,
    share_tokens,
)
from lecture_rag.evaluate.judges.verdicts import (
    ABSTENTION_NOTE,
    NO_JUDGE_ERROR,
    answer_relevance,
    auto_label,
    context_relevance,
    groundedness,
    no_judge,
    not_applicable,
    split_claims,
)
from lecture_rag.evaluate.labels import DEFAULT_SCHEME, LabelScheme
from lecture_rag.llm import LLM, Metered
from lecture_rag.records import Answer, JudgeKind, Judgment, Timing

__all__ = [
    "DEFAULT_CONFIG",
    "JUDGES",
    "JUDGE_ENV_PREFIX",
    "KINDS",
    "MAX_SCORE",
    "NO_JUDGE_ERROR",
    "SCORE_GRAMMAR",
    "SCORE_SCHEMA",
    "JudgeConfig",
    "JudgeSpec",
    "LabelExample",
    "answer_relevance",
    "auto_label",
    "config_from_settings",
    "context_relevance",
    "fit_tokens",
    "groundedness",
    "judge_answer",
    "label_grammar",
    "label_schema",
    "no_judge",
    "normalise",
    "not_applicable",
    "parse_judge_kinds",
    "parse_label_output",
    "parse_score_output",
    "prompt_hashes",
    "render",
    "share_tokens",
    "split_claims",
    "verdict_text",
]


@dataclass(frozen=True, slots=True)
class Inputs:
    """What every judge may look at: the question, the answer, the run's label scheme and settings.

    ``references`` are correct answers people gave, where the data has them
    (answer-judgment sets); the automated annotator compares with them.
    """

    llm: LLM | None
    question: str
    answer: Answer
    scheme: LabelScheme
    config: JudgeConfig
    references: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class JudgeSpec:
    """One registered judge: its kind (the key runs store), its short name for ``--judges``, and how it runs."""

    kind: JudgeKind
    alias: str
    title: str
    run: Callable[[Inputs], Judgment]


def _answer_relevance(x: Inputs) -> Judgment:
    return answer_relevance(x.llm, x.question, x.answer.text, config=x.config)


def _context_relevance(x: Inputs) -> Judgment:
    """All retrieved hits: what the user sees, not only what fitted the model's window."""
    return context_relevance(x.llm, x.question, x.answer.hits, config=x.config)


def _groundedness(x: Inputs) -> Judgment:
    """The answer's claims against the context the model was given; an abstention is not scored."""
    if x.llm is not None and x.answer.abstained:
        return not_applicable("groundedness", ABSTENTION_NOTE, x.llm.name)
    return groundedness(x.llm, x.answer.text, x.answer.context, language=x.answer.language or None, config=x.config)


def _auto_label(x: Inputs) -> Judgment:
    return auto_label(
        x.llm, x.question, x.answer.text, x.answer.context, x.scheme, config=x.config, references=x.references
    )


JUDGES: dict[JudgeKind, JudgeSpec] = {
    spec.kind: spec
    for spec in (
        JudgeSpec("answer_relevance", "ar", "Answer Relevance", _answer_relevance),
        JudgeSpec("context_relevance", "cr", "Context Relevance", _context_relevance),
        JudgeSpec("groundedness", "g", "Groundedness", _groundedness),
        JudgeSpec("auto_label", "label", "Anotação automatizada", _auto_label),
    )
}
KINDS: tuple[JudgeKind, ...] = tuple(JUDGES)


def parse_judge_kinds(spec: str) -> tuple[JudgeKind, ...]:
    """``ar,label`` → the judges to run, in the registry's order; unknown names are a clear error."""
    by_name = {name: kind for kind, s in JUDGES.items() for name in (kind, s.alias)}
    wanted = [part.strip().lower() for part in spec.split(",") if part.strip()]
    unknown = sorted(name for name in wanted if name not in by_name)
    if unknown or not wanted:
        names = ", ".join(f"{s.alias} ({kind})" for kind, s in JUDGES.items())
        raise LectureRagError(f"juiz desconhecido: {', '.join(unknown) or '(vazio)'}. Use uma lista de: {names}.")
    chosen = {by_name[name] for name in wanted}
    return tuple(kind for kind in KINDS if kind in chosen)


def judge_answer(
    llm: LLM | None,
    answer: Answer,
    kinds: Sequence[JudgeKind] = KINDS,
    *,
    question: str | None = None,
    scheme: LabelScheme = DEFAULT_SCHEME,
    config: JudgeConfig = DEFAULT_CONFIG,
    references: Sequence[str] = (),
) -> list[Judgment]:
    """Every requested judgment of one answer, in the order asked; ``llm=None`` says "no judge" for each.

    ``question`` is the question as the question file wrote it (default: the
    answer's own, which the engine may have shortened to fit a small window).
    Each judgment carries what it cost (calls, tokens, seconds) and the
    transport that held its form.
    """
    text = question if question is not None else answer.question
    out = []
    for kind in kinds:
        meter = Metered(llm) if llm is not None else None
        judgment = JUDGES[kind].run(Inputs(meter, text, answer, scheme, config, tuple(references)))
        if meter is not None and meter.calls:
            timing = Timing(None, meter.seconds, meter.prompt_tokens, meter.completion_tokens)
            judgment = replace(judgment, calls=meter.calls, timing=timing, transport=meter.transport)
        out.append(judgment)
    return out
