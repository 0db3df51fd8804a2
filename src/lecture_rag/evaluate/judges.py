"""LLM judges in the TruLens chain-of-thought form.

The reference system shows, per answer, an Answer Relevance score with the
judge's reasoning (``Criteria: … Supporting Evidence: … Score: 3``) on a 0-3
scale normalised to 0-1. This module produces that judgment and three
companions (context relevance, groundedness, and a predicted annotator
label), from Jinja2 prompts in ``evaluate/prompts/``.

Honesty rules, because scores end up in reports people trust:

* a judge output that cannot be read is stored verbatim and marked
  ``parsed=False`` with the reason; it is never clamped, guessed or dropped;
* no judge configured → ``Judgment(parsed=False, error="nenhum juiz configurado")``,
  never a made-up score;
* a judgment that does not apply (groundedness of an abstention) has
  ``applicable=False`` and a note instead of a score.

Parsing decisions (documented once, tested in ``tests/test_judges.py``):

* the **last** numeric ``Score:`` line wins: small models often echo the
  template (``Score: <the score>``) or an example before their own verdict;
* a fractional score (``2.5``) is unparseable, not rounded: the rubric is
  integral and rounding either way would invent a verdict the model did not
  give (``3.0`` is accepted, it is an integer);
* a score outside 0-3 (``7``, ``-1``) or on another scale (``8/10``) is
  unparseable, never clamped;
* a bare integer as the whole output (TruLens' no-reasoning form) is accepted.

LLM transport failures (:class:`~lecture_rag.generate.llm.LLMError`) are
raised, not recorded as judgments: they say nothing about the answer, and a
run must be able to retry them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from typing import Any, Literal

from jinja2 import Environment

from lecture_rag.config import LLMSettings
from lecture_rag.evaluate.labels import DEFAULT_SCHEME, LabelScheme, fold_text
from lecture_rag.generate.citations import is_abstention
from lecture_rag.generate.language import NOT_FOUND, detect_language
from lecture_rag.generate.llm import LLM, ChatMessage, LLMError, estimate_tokens, make_llm
from lecture_rag.records import Answer, Hit, Segment
from lecture_rag.templating import short_hash, source_hashes, text_templates

JudgeKind = Literal["answer_relevance", "context_relevance", "groundedness", "auto_label"]
KINDS: tuple[JudgeKind, ...] = ("answer_relevance", "context_relevance", "groundedness", "auto_label")
MAX_SCORE = 3
NO_JUDGE_ERROR = "nenhum juiz configurado"
JUDGE_ENV_PREFIX = "LECTURE_RAG_JUDGE_LLM_"
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


# --------------------------------------------------------------------------- records


@dataclass(slots=True)
class ItemJudgment:
    """The verdict on one retrieved segment (context relevance) or one claim (groundedness).

    ``text`` is exactly what the judge saw (a segment may be truncated to fit
    the judge's window, then ``truncated`` is True), so a verdict can be audited.
    """

    index: int
    text: str
    score_raw: int | None
    score: float | None
    reasoning: str
    raw: str
    parsed: bool
    error: str = ""
    corpus_id: int | None = None
    truncated: bool = False


@dataclass(slots=True)
class Judgment:
    """One judge's verdict on one answer.

    ``score_raw`` is the 0-3 integer the judge gave (None for the aggregated
    kinds, whose ``score`` is the mean of their items' scores, normalised);
    ``score`` is always 0-1 or None. ``error`` says why something could not
    be read; for aggregated kinds it may be set while ``parsed`` is True when
    only some items failed. ``applicable=False`` means the judgment does not
    apply to this answer (see ``note``), which is not a failure.
    """

    kind: JudgeKind
    score_raw: int | None
    score: float | None
    label: str | None
    reasoning: str
    raw: str
    parsed: bool
    error: str
    model: str
    items: list[ItemJudgment] = field(default_factory=list)
    note: str = ""
    applicable: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the run store saves it as-is; ``kind`` is its key)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Judgment:
        """Inverse of :meth:`to_dict`; unknown keys (from newer versions) are ignored."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        item_keys = {f.name for f in fields(ItemJudgment)}
        values["items"] = [
            ItemJudgment(**{k: v for k, v in item.items() if k in item_keys}) for item in data.get("items", [])
        ]
        return cls(**values)


@dataclass(frozen=True, slots=True)
class JudgeConfig:
    """Generation settings; deterministic by default so a rerun reproduces the verdicts."""

    max_tokens: int = 660  # covers SCORE_GRAMMAR: 600 characters of lines plus the keys
    label_max_tokens: int = 336  # covers label_grammar's 300 characters plus the keys
    temperature: float = 0.0
    seed: int = 42
    max_claims: int = 12
    margin_tokens: int = 48


DEFAULT_CONFIG = JudgeConfig()


# --------------------------------------------------------------------------- parsing

# Key, optional "(0-3)", then ":", "=", "-" or the word "is"/"é" ("The score is 3").
_KEY_TAIL = r"\b[*_\s]*(?:\([^)\n]{0,20}\))?[*_\s]*(?:[:=\-–]|(?:is|é)\s)[*_\s]*"
_SCORE_LINE = re.compile(rf"(?<!\w)(?:score|pontua[çc][ãa]o|nota){_KEY_TAIL}(?P<value>[^\n]*)", re.IGNORECASE)
_LABEL_LINE = re.compile(
    rf"(?<!\w)(?:label|r[óo]tulo|classifica[çc][ãa]o|classification){_KEY_TAIL}(?P<value>[^\n]*)", re.IGNORECASE
)
_NUMBER = re.compile(
    r"[\[(<\"'`]*\s*(?P<num>[-+−]?\d+(?:[.,]\d+)?)"
    r"(?:\s*(?:/|out\s+of|de|of)\s*(?P<den>\d+(?:[.,]\d+)?))?",
    re.IGNORECASE,
)
_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "um": 1, "dois": 2, "tres": 3, "três": 3}
_WORD = re.compile(r"[\[(\"'`]*\s*(?P<word>[a-zà-ú]+)\b", re.IGNORECASE)
_BARE = re.compile(r"^[*_\s]*(?P<num>\d+)(?:\s*/\s*3)?[*_.\s]*$")
_CRITERIA = re.compile(r"(?<!\w)[*_#\s]*(?:criteria|crit[ée]rios?)\b", re.IGNORECASE)
_JUSTIFICATION = re.compile(r"(?<!\w)[*_#\s]*(?:justification|justificativa)\b", re.IGNORECASE)


def _to_int(num: str, den: str | None) -> tuple[int | None, str]:
    """Validate one score token: integer, on the 0-3 scale, or say what is wrong."""
    value = float(num.replace(",", ".").replace("−", "-"))
    if den is not None and float(den.replace(",", ".")) != MAX_SCORE:
        return None, f"nota '{num}/{den}' em outra escala (esperada 0-{MAX_SCORE})"
    if value != int(value):
        return None, f"nota fracionária '{num}' (a escala é inteira, 0-{MAX_SCORE}; não arredondamos)"
    if not 0 <= value <= MAX_SCORE:
        return None, f"nota {int(value)} fora da escala 0-{MAX_SCORE}"
    return int(value), ""


def _score_value(value: str) -> tuple[str, str | None, int] | None:
    """(number, denominator, chars used) after a ``Score:`` key, or None for a placeholder/prose line."""
    number = _NUMBER.match(value)
    if number:
        return number.group("num"), number.group("den"), number.end()
    word = _WORD.match(value)
    if word and word.group("word").lower() in _WORDS:
        return str(_WORDS[word.group("word").lower()]), None, word.end()
    return None


def _reasoning_span(text: str, end: int, start_marker: re.Pattern[str]) -> str:
    """The reasoning block that ends at ``end``: from its last start marker (or the text's start)."""
    starts = [m.start() for m in start_marker.finditer(text, 0, end)]
    begin = starts[-1] if starts else 0
    return text[begin:end].strip()


def parse_score_output(text: str) -> tuple[int | None, str, str]:
    """``(score_raw, reasoning, error)`` from a judge's output; never raises.

    ``score_raw`` is None when unreadable, and ``error`` says why (in
    Portuguese, for reports). ``reasoning`` is the CoT block ending at the
    chosen score (from its last ``Criteria:``), or the whole stripped text
    when there is no score.
    """
    if not text or not text.strip():
        return None, "", "saída vazia do juiz"
    found: tuple[int, str, str | None] | None = None
    for match in _SCORE_LINE.finditer(text):
        value = _score_value(match.group("value"))
        if value is not None:
            num, den, used = value
            found = (match.start("value") + used, num, den)
    if found is None:
        bare = _BARE.match(text)
        if bare:
            score, error = _to_int(bare.group("num"), None)
            return score, text.strip(), error
        return None, text.strip(), "a saída não tem linha 'Score: N' com um número"
    end, num, den = found
    score, error = _to_int(num, den)
    return score, _reasoning_span(text, end, _CRITERIA), error


def _exact_label(text: str, scheme: LabelScheme) -> str | None:
    """A whole output that is nothing but a code or a label name (``C``, ``**correta**``)."""
    cleaned = fold_text(text.strip().strip("*_\"'`[]()<>. "))
    for label in scheme.labels:
        if cleaned in {fold_text(x) for x in (label.code, label.name, *label.aliases)}:
            return label.code
    return None


def parse_label_output(text: str, scheme: LabelScheme = DEFAULT_SCHEME) -> tuple[str | None, str, str]:
    """``(label_code, reasoning, error)`` from an auto-label output; never raises.

    The last ``Label:`` line that is not a template placeholder (``<one of …>``)
    decides; a label outside the scheme makes the output unparseable.
    """
    if not text or not text.strip():
        return None, "", "saída vazia do juiz"
    chosen: re.Match[str] | None = None
    for match in _LABEL_LINE.finditer(text):
        if not match.group("value").strip().startswith("<"):
            chosen = match
    codes = ", ".join(scheme.codes)
    if chosen is None:
        code = _exact_label(text, scheme)
        if code is not None:
            return code, text.strip(), ""
        return None, text.strip(), f"a saída não tem linha 'Label: X' (esperado um de {codes})"
    value = chosen.group("value").strip().strip("*_\"'`[]()<>. ")
    code = scheme.resolve(value)
    end = chosen.end()
    reasoning = _reasoning_span(text, end, _JUSTIFICATION)
    if code is None:
        return None, reasoning, f"rótulo desconhecido '{value[:40]}' (esperado um de {codes})"
    return code, reasoning, ""


def normalise(score_raw: int | None) -> float | None:
    """0-3 → 0-1 (3 → 1.00), as the seed displays it."""
    return None if score_raw is None else score_raw / MAX_SCORE


# --------------------------------------------------------------------------- prompts


@lru_cache(maxsize=1)
def _templates() -> Environment:
    return text_templates("lecture_rag.evaluate", "prompts")


def render(name: str, **values: Any) -> str:
    """Render one prompt template (public so fixtures can be re-recorded with the real prompts)."""
    return _templates().get_template(name).render(**values).strip()


def prompt_hashes(scheme: LabelScheme = DEFAULT_SCHEME) -> dict[str, str]:
    """Short hashes of the judge templates and output grammars (for ``scheme``'s labels), for run snapshots."""
    return {
        **source_hashes(_templates(), TEMPLATES),
        "grammars": short_hash(SCORE_GRAMMAR + label_grammar(scheme)),
    }


# --------------------------------------------------------------------------- token budget

Counter = Callable[[str], int]


def _counter(llm: LLM) -> Counter:
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


def _room(llm: LLM, config: JudgeConfig, max_tokens: int, system: str, user_skeleton: str) -> int:
    """Tokens left for the variable texts once the fixed prompt and the output are reserved."""
    count = _counter(llm)
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


def _ask(llm: LLM, system: str, user: str, max_tokens: int, config: JudgeConfig, grammar: str) -> str:
    """One deterministic judge call; returns the raw text."""
    messages: list[ChatMessage] = [
        {"role": "system", "content": system},
        {"role": "user", "content": user},
    ]
    completion = llm.complete(
        messages, max_tokens=max_tokens, temperature=config.temperature, seed=config.seed, grammar=grammar
    )
    return completion.text


# --------------------------------------------------------------------------- judgments


def no_judge(kind: JudgeKind) -> Judgment:
    """What every judge returns when no judge LLM is configured: no score, and why."""
    return Judgment(kind, None, None, None, "", "", False, NO_JUDGE_ERROR, "")


def not_applicable(kind: JudgeKind, note: str, model: str) -> Judgment:
    """A judgment that does not apply to this answer: no score, a note, no error."""
    return Judgment(kind, None, None, None, "", "", False, "", model, note=note, applicable=False)


def _scored(kind: JudgeKind, raw: str, model: str, note: str = "") -> Judgment:
    score_raw, reasoning, error = parse_score_output(raw)
    return Judgment(
        kind, score_raw, normalise(score_raw), None, reasoning, raw, score_raw is not None, error, model, note=note
    )


def _item(index: int, text: str, raw: str, truncated: bool, corpus_id: int | None = None) -> ItemJudgment:
    score_raw, reasoning, error = parse_score_output(raw)
    return ItemJudgment(
        index, text, score_raw, normalise(score_raw), reasoning, raw, score_raw is not None, error, corpus_id, truncated
    )


def _aggregate(kind: JudgeKind, items: list[ItemJudgment], model: str, what: str, note: str = "") -> Judgment:
    """Mean of the readable item scores; unreadable items are counted in ``error``, not as zeros."""
    scored = [i.score_raw for i in items if i.score_raw is not None]
    failed = len(items) - len(scored)
    mean = sum(scored) / len(scored) if scored else None
    error = f"{failed} de {len(items)} {what} sem nota legível" if failed else ""
    reasoning = "\n\n".join(f"[{i.index}] {i.reasoning}" for i in items)
    raw = "\n\n".join(f"### [{i.index}]\n{i.raw}" for i in items)
    score = None if mean is None else mean / MAX_SCORE
    return Judgment(kind, None, score, None, reasoning, raw, bool(scored), error, model, items, note)


def _segments(items: Iterable[Segment | Hit]) -> list[Segment]:
    return [item.segment if isinstance(item, Hit) else item for item in items]


def answer_relevance(llm: LLM | None, question: str, answer: str, *, config: JudgeConfig = DEFAULT_CONFIG) -> Judgment:
    """How relevant the answer is to the question (TruLens PROMPT/RESPONSE form), 0-3 → 0-1."""
    kind: JudgeKind = "answer_relevance"
    if llm is None:
        return no_judge(kind)
    system = render("answer_relevance.system.j2", not_found=NOT_FOUND["pt"])
    room = _room(llm, config, config.max_tokens, system, render("answer_relevance.user.j2", question="", answer=""))
    count = _counter(llm)
    q_text, q_cut = fit_tokens(question, room // 4, count)
    a_text, a_cut = fit_tokens(answer, room - count(q_text), count)
    user = render("answer_relevance.user.j2", question=q_text, answer=a_text)
    raw = _ask(llm, system, user, config.max_tokens, config, SCORE_GRAMMAR)
    note = "pergunta ou resposta truncada para caber na janela do juiz" if q_cut or a_cut else ""
    return _scored(kind, raw, llm.name, note)


def context_relevance(
    llm: LLM | None, question: str, segments: Sequence[Segment | Hit], *, config: JudgeConfig = DEFAULT_CONFIG
) -> Judgment:
    """Each retrieved segment scored 0-3 against the question; overall = mean, normalised."""
    kind: JudgeKind = "context_relevance"
    if llm is None:
        return no_judge(kind)
    segs = _segments(segments)
    if not segs:
        return not_applicable(kind, "nenhum trecho recuperado para avaliar", llm.name)
    system = render("context_relevance.system.j2")
    room = _room(llm, config, config.max_tokens, system, render("context_relevance.user.j2", question="", context=""))
    count = _counter(llm)
    q_text, _ = fit_tokens(question, room // 4, count)
    items = []
    for index, seg in enumerate(segs, start=1):
        text, cut = fit_tokens(seg.text, room - count(q_text), count)
        user = render("context_relevance.user.j2", question=q_text, context=text)
        raw = _ask(llm, system, user, config.max_tokens, config, SCORE_GRAMMAR)
        items.append(_item(index, text, raw, cut, seg.corpus_id))
    return _aggregate(kind, items, llm.name, "trechos")


_CITATION = re.compile(r"\s*\[\s*\d+(?:\s*[-–,;]\s*\d+)*\s*\]")
# Abbreviations after which pysbd's Spanish rules wrongly end a Portuguese sentence (common words left out).
_PT_ABBREVIATIONS = frozenset(
    {
        "sr",
        "sra",
        "srs",
        "dr",
        "dra",
        "drs",
        "prof",
        "profa",
        "profs",
        "p",
        "pp",
        "pag",
        "ex",
        "eg",
        "ie",
        "etc",
        "obs",
        "art",
        "cap",
        "fig",
        "num",
        "n",
        "vol",
        "eng",
        "aprox",
        "av",
        "tel",
        "ref",
        "cf",
        "ibid",
        "op",
        "cit",
        "sec",
        "seg",
        "jan",
        "fev",
        "abr",
        "mai",
        "jun",
        "jul",
        "ago",
        "nov",
        "dez",
    }
)


def _ends_with_abbreviation(sentence: str) -> bool:
    words = re.findall(r"[^\W\d_]+(?=\.\s*$)", sentence.strip())
    return bool(words) and fold_text(words[-1]) in _PT_ABBREVIATIONS


def split_claims(text: str, language: str = "pt") -> list[str]:
    """The answer's sentences, without citation markers, as the claims to verify.

    pysbd has no Portuguese model; its Spanish rules are closest, and the
    fragments it leaves after Portuguese abbreviations (``Sr.``, ``p. ex.``)
    are glued back to the next sentence.
    """
    import pysbd

    segmenter = pysbd.Segmenter(language="en" if language == "en" else "es", clean=False)
    merged: list[str] = []
    carry = ""
    for piece in segmenter.segment(text):
        sentence = carry + piece
        if _ends_with_abbreviation(sentence):
            carry = sentence
            continue
        merged.append(sentence)
        carry = ""
    if carry:
        merged.append(carry)
    claims = [re.sub(r"\s+", " ", _CITATION.sub("", s)).strip() for s in merged]
    return [c for c in claims if re.search(r"[^\W\d_]{2,}", c)]


def groundedness(
    llm: LLM | None,
    answer: str,
    segments: Sequence[Segment | Hit],
    *,
    language: str | None = None,
    config: JudgeConfig = DEFAULT_CONFIG,
) -> Judgment:
    """Each claim (sentence) of the answer scored 0-3 for support by the segments; overall = mean.

    An abstention gets no score: "not found" is not a claim about the lectures,
    and scoring it would inflate (or deflate) the run's average.
    """
    kind: JudgeKind = "groundedness"
    if llm is None:
        return no_judge(kind)
    if is_abstention(answer):
        return not_applicable(kind, "a resposta é uma abstenção: groundedness não se aplica", llm.name)
    claims = split_claims(answer, language or detect_language(answer))
    segs = _segments(segments)
    if not claims:
        return not_applicable(kind, "a resposta não tem afirmações para verificar", llm.name)
    if not segs:
        return not_applicable(kind, "sem trechos de contexto para verificar a resposta", llm.name)
    note = ""
    if len(claims) > config.max_claims:
        note = f"{len(claims) - config.max_claims} afirmação(ões) além do limite de {config.max_claims} não avaliada(s)"
        claims = claims[: config.max_claims]
    system = render("groundedness.system.j2")
    room = _room(llm, config, config.max_tokens, system, render("groundedness.user.j2", sources=[], statement=""))
    count = _counter(llm)
    statements = [fit_tokens(claim, room // 4, count)[0] for claim in claims]
    sources = share_tokens([s.text for s in segs], room - max(count(s) for s in statements), count)
    source_texts = [t for t, _ in sources]
    cut = any(c for _, c in sources)
    items = []
    for index, statement in enumerate(statements, start=1):
        user = render("groundedness.user.j2", sources=source_texts, statement=statement)
        items.append(_item(index, statement, _ask(llm, system, user, config.max_tokens, config, SCORE_GRAMMAR), cut))
    return _aggregate(kind, items, llm.name, "afirmações", note)


def auto_label(
    llm: LLM | None,
    question: str,
    answer: str,
    segments: Sequence[Segment | Hit],
    scheme: LabelScheme = DEFAULT_SCHEME,
    *,
    config: JudgeConfig = DEFAULT_CONFIG,
) -> Judgment:
    """The label a human annotator would give (default C/P/I/N), predicted from the rubric."""
    kind: JudgeKind = "auto_label"
    if llm is None:
        return no_judge(kind)
    codes = ", ".join(scheme.codes)
    system = render("auto_label.system.j2", labels=scheme.labels, codes=codes)
    skeleton = render("auto_label.user.j2", question="", answer="", sources=[])
    room = _room(llm, config, config.label_max_tokens, system, skeleton)
    count = _counter(llm)
    q_text, q_cut = fit_tokens(question, room // 6, count)
    a_text, a_cut = fit_tokens(answer, room // 3, count)
    sources = share_tokens([s.text for s in _segments(segments)], room - count(q_text) - count(a_text), count)
    user = render("auto_label.user.j2", question=q_text, answer=a_text, sources=[t for t, _ in sources])
    raw = _ask(llm, system, user, config.label_max_tokens, config, label_grammar(scheme))
    label, reasoning, error = parse_label_output(raw, scheme)
    cut = q_cut or a_cut or any(c for _, c in sources)
    note = "textos truncados para caber na janela do juiz" if cut else ""
    return Judgment(kind, None, None, label, reasoning, raw, label is not None, error, llm.name, note=note)


# --------------------------------------------------------------------------- judge objects


class Judge:
    """The four judges bound to one LLM, config and label scheme (what a run holds)."""

    def __init__(
        self, llm: LLM | None, config: JudgeConfig = DEFAULT_CONFIG, scheme: LabelScheme = DEFAULT_SCHEME
    ) -> None:
        self.llm = llm
        self.config = config
        self.scheme = scheme

    @property
    def model(self) -> str:
        """The judge model's name, or '' when there is none."""
        return self.llm.name if self.llm is not None else ""

    def answer_relevance(self, question: str, answer: str) -> Judgment:
        return answer_relevance(self.llm, question, answer, config=self.config)

    def context_relevance(self, question: str, segments: Sequence[Segment | Hit]) -> Judgment:
        return context_relevance(self.llm, question, segments, config=self.config)

    def groundedness(self, answer: str, segments: Sequence[Segment | Hit], language: str | None = None) -> Judgment:
        return groundedness(self.llm, answer, segments, language=language, config=self.config)

    def auto_label(self, question: str, answer: str, segments: Sequence[Segment | Hit]) -> Judgment:
        return auto_label(self.llm, question, answer, segments, self.scheme, config=self.config)

    def judge_answer(self, answer: Answer, kinds: Sequence[JudgeKind] = KINDS) -> list[Judgment]:
        """Every requested judgment of one generated answer.

        Context relevance judges all retrieved hits (what the user sees);
        groundedness checks the answer against the context the model was given.
        """
        out: list[Judgment] = []
        for kind in kinds:
            if kind == "answer_relevance":
                out.append(self.answer_relevance(answer.question, answer.text))
            elif kind == "context_relevance":
                out.append(self.context_relevance(answer.question, answer.hits))
            elif kind == "groundedness":
                out.append(self._groundedness_of(answer))
            elif kind == "auto_label":
                out.append(self.auto_label(answer.question, answer.text, answer.context or answer.hits))
        return out

    def _groundedness_of(self, answer: Answer) -> Judgment:
        if self.llm is not None and answer.abstained:
            return not_applicable("groundedness", "a resposta é uma abstenção: groundedness não se aplica", self.model)
        return self.groundedness(answer.text, answer.context or answer.hits, answer.language or None)


class NoJudge(Judge):
    """Stands in when no judge LLM is configured: every judgment says so, none is scored."""

    def __init__(self, config: JudgeConfig = DEFAULT_CONFIG, scheme: LabelScheme = DEFAULT_SCHEME) -> None:
        super().__init__(None, config, scheme)


def make_judge(settings: LLMSettings, config: JudgeConfig | None = None, scheme: LabelScheme = DEFAULT_SCHEME) -> Judge:
    """The judge the settings ask for (``judge_llm``); a :class:`NoJudge` for backend ``none``."""
    cfg = config or JudgeConfig(temperature=settings.temperature, seed=settings.seed)
    llm = make_llm(settings, env_prefix=JUDGE_ENV_PREFIX)
    return NoJudge(cfg, scheme) if llm is None else Judge(llm, cfg, scheme)
