"""The four judges: answer relevance, context relevance, groundedness and the automated label.

Honesty rules, because scores end up in reports people trust:

* a judge output that cannot be read is stored verbatim and marked
  ``parsed=False`` with the reason; it is never clamped, guessed or dropped;
* no judge configured → ``Judgment(parsed=False, error="nenhum juiz configurado")``,
  never a made-up score;
* a judgment that does not apply (groundedness of an abstention) has
  ``applicable=False`` and a note instead of a score.

LLM transport failures (:class:`~lecture_rag.errors.LLMError`) are raised,
not recorded as judgments: they say nothing about the answer, and a run must
be able to retry them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lecture_rag.evaluate.judges.parsing import MAX_SCORE, normalise, parse_label_output, parse_score_output
from lecture_rag.evaluate.judges.prompting import (
    DEFAULT_CONFIG,
    SCORE_GRAMMAR,
    SCORE_SCHEMA,
    JudgeConfig,
    ask,
    counter,
    fit_tokens,
    label_grammar,
    label_schema,
    render,
    room_for,
    share_tokens,
)
from lecture_rag.evaluate.labels import DEFAULT_SCHEME, LabelScheme, fold_text
from lecture_rag.generate.citations import is_abstention
from lecture_rag.generate.language import NOT_FOUND, detect_language
from lecture_rag.llm import LLM
from lecture_rag.records import ItemJudgment, JudgeKind, Judgment, Segment

NO_JUDGE_ERROR = "nenhum juiz configurado"
ABSTENTION_NOTE = "a resposta é uma abstenção: groundedness não se aplica"


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


def answer_relevance(llm: LLM | None, question: str, answer: str, *, config: JudgeConfig = DEFAULT_CONFIG) -> Judgment:
    """How relevant the answer is to the question (TruLens PROMPT/RESPONSE form), 0-3 → 0-1."""
    kind: JudgeKind = "answer_relevance"
    if llm is None:
        return no_judge(kind)
    system = render("answer_relevance.system.j2", not_found=NOT_FOUND["pt"])
    room = room_for(llm, config, config.max_tokens, system, render("answer_relevance.user.j2", question="", answer=""))
    count = counter(llm)
    q_text, q_cut = fit_tokens(question, room // 4, count)
    a_text, a_cut = fit_tokens(answer, room - count(q_text), count)
    user = render("answer_relevance.user.j2", question=q_text, answer=a_text)
    raw = ask(llm, system, user, config.max_tokens, config, SCORE_GRAMMAR, SCORE_SCHEMA)
    note = "pergunta ou resposta truncada para caber na janela do juiz" if q_cut or a_cut else ""
    return _scored(kind, raw, llm.name, note)


def context_relevance(
    llm: LLM | None, question: str, segments: Sequence[Segment], *, config: JudgeConfig = DEFAULT_CONFIG
) -> Judgment:
    """Each retrieved segment scored 0-3 against the question; overall = mean, normalised."""
    kind: JudgeKind = "context_relevance"
    if llm is None:
        return no_judge(kind)
    segs = list(segments)
    if not segs:
        return not_applicable(kind, "nenhum trecho recuperado para avaliar", llm.name)
    system = render("context_relevance.system.j2")
    room = room_for(
        llm, config, config.max_tokens, system, render("context_relevance.user.j2", question="", context="")
    )
    count = counter(llm)
    q_text, _ = fit_tokens(question, room // 4, count)
    items = []
    for index, seg in enumerate(segs, start=1):
        text, cut = fit_tokens(seg.text, room - count(q_text), count)
        user = render("context_relevance.user.j2", question=q_text, context=text)
        raw = ask(llm, system, user, config.max_tokens, config, SCORE_GRAMMAR, SCORE_SCHEMA)
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
    segments: Sequence[Segment],
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
        return not_applicable(kind, ABSTENTION_NOTE, llm.name)
    claims = split_claims(answer, language or detect_language(answer))
    segs = list(segments)
    if not claims:
        return not_applicable(kind, "a resposta não tem afirmações para verificar", llm.name)
    if not segs:
        return not_applicable(kind, "sem trechos de contexto para verificar a resposta", llm.name)
    note = ""
    if len(claims) > config.max_claims:
        note = f"{len(claims) - config.max_claims} afirmação(ões) além do limite de {config.max_claims} não avaliada(s)"
        claims = claims[: config.max_claims]
    system = render("groundedness.system.j2")
    room = room_for(llm, config, config.max_tokens, system, render("groundedness.user.j2", sources=[], statement=""))
    count = counter(llm)
    statements = [fit_tokens(claim, room // 4, count)[0] for claim in claims]
    sources = share_tokens([s.text for s in segs], room - max(count(s) for s in statements), count)
    source_texts = [t for t, _ in sources]
    cut = any(c for _, c in sources)
    items = []
    for index, statement in enumerate(statements, start=1):
        user = render("groundedness.user.j2", sources=source_texts, statement=statement)
        items.append(
            _item(index, statement, ask(llm, system, user, config.max_tokens, config, SCORE_GRAMMAR, SCORE_SCHEMA), cut)
        )
    return _aggregate(kind, items, llm.name, "afirmações", note)


def auto_label(
    llm: LLM | None,
    question: str,
    answer: str,
    segments: Sequence[Segment],
    scheme: LabelScheme = DEFAULT_SCHEME,
    *,
    config: JudgeConfig = DEFAULT_CONFIG,
    references: Sequence[str] = (),
) -> Judgment:
    """The label a human annotator would give (default C/P/I/N), predicted from the rubric.

    ``references`` are correct answers people gave (answer-judgment data
    sets have them instead of lecture excerpts); ``config.examples`` are
    labelled examples shown before the item (calibration).
    """
    kind: JudgeKind = "auto_label"
    if llm is None:
        return no_judge(kind)
    codes = ", ".join(scheme.codes)
    refs = [r for r in references if r.strip()]
    system = render(
        "auto_label.system.j2", labels=scheme.labels, codes=codes, references=bool(refs), examples=config.examples
    )
    skeleton = render("auto_label.user.j2", question="", answer="", sources=[], references=refs)
    room = room_for(llm, config, config.label_max_tokens, system, skeleton)
    count = counter(llm)
    q_text, q_cut = fit_tokens(question, room // 6, count)
    a_text, a_cut = fit_tokens(answer, room // 3, count)
    sources = share_tokens([s.text for s in segments], room - count(q_text) - count(a_text), count)
    user = render(
        "auto_label.user.j2", question=q_text, answer=a_text, sources=[t for t, _ in sources], references=refs
    )
    raw = ask(llm, system, user, config.label_max_tokens, config, label_grammar(scheme), label_schema(scheme))
    label, reasoning, error = parse_label_output(raw, scheme)
    cut = q_cut or a_cut or any(c for _, c in sources)
    note = "textos truncados para caber na janela do juiz" if cut else ""
    return Judgment(kind, None, None, label, reasoning, raw, label is not None, error, llm.name, note=note)
