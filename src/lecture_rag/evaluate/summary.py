"""What a course team reads about a run: agreement, score distributions, retrieval metrics.

Built from a run's stored items only, so the CLI, the reports and the web
page always show the same numbers.
"""

from __future__ import annotations

from collections import Counter
from statistics import mean
from typing import Any

from pydantic import SerializerFunctionWrapHandler, model_serializer
from pydantic.dataclasses import dataclass

from lecture_rag.config import env_var
from lecture_rag.evaluate.agreement import (
    AgreementReport,
    InterAnnotatorReport,
    ScoreSummary,
    agreement,
    inter_annotator,
    score_distribution,
)
from lecture_rag.evaluate.judges import KINDS, NO_JUDGE_ERROR
from lecture_rag.evaluate.labels import DEFAULT_SCHEME, LabelScheme, fold_text
from lecture_rag.evaluate.retrieval import Summary, judge_hits, summarise
from lecture_rag.records import Question, RunItem

# Kamalloo et al. (2023): judges accept wrong long-form answers; "long" is more than this many words.
LONG_ANSWER_WORDS = 10
# The key a second verdict on the same item is stored under (self-consistency): ``auto_label#2``.
REPEAT = "#2"
# How the reference answers of an item are joined in its stored expected answer.
REFERENCE_SEPARATOR = " / "


NO_PAIRS = (
    "sem pares de anotação manual e automatizada: anote com 'lecture-rag annotate' "
    f"e configure um juiz ({env_var('judge_llm')}*)"
)


@dataclass(slots=True)
class AnswerCounts:
    """How the run's answers went: extractive, abstained, without citations, failed."""

    extractive: int
    abstained: int
    no_citations: int
    invalid_citations: int
    llm_errors: int


@dataclass(slots=True)
class JudgeSummary:
    """One judge over the run: how many it judged (0: not asked for), its mean score, what it could not read.

    ``no_judge`` counts the items no judge looked at (none was configured): they are not verdicts
    that could not be read, and a report must not call them so.
    """

    judged: int
    n_scored: int
    mean: float | None
    unparsed: int
    errors: dict[str, int]
    no_judge: int = 0

    @property
    def wording(self) -> str:
        """This judge in one Portuguese phrase, the same in the terminal and on the web page."""
        if not self.judged:
            return "não pedido nesta rodada"
        if self.no_judge == self.judged:
            return f"sem juiz configurado: nenhuma das {self.judged} respostas foi avaliada"
        text = f"média {'n/d' if self.mean is None else f'{self.mean:.2f}'} em {self.n_scored}"
        if self.unparsed:
            text += f", {self.unparsed} veredito(s) ilegível(is)"
        if self.no_judge:
            text += f", {self.no_judge} sem juiz"
        return text


@dataclass(slots=True)
class GroupAgreement:
    """Agreement inside one group of items, and how often the judge accepted what people rejected."""

    n: int
    accuracy: float | None
    kappa: float | None
    rejected_by_people: int
    accepted_by_judge: int
    false_accept: float | None


@dataclass(slots=True)
class SelfConsistency:
    """Items judged twice: the share with the same verdict, and with the same text."""

    n: int
    identical: float
    identical_text: float


@dataclass(slots=True)
class JudgeCost:
    """What every stored judgment of a run cost: LLM calls, tokens, seconds, how the form was held."""

    calls: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    seconds_per_item: float | None
    transports: dict[str, int]


@dataclass(slots=True)
class JudgeVsPeople:
    """The automated annotator measured against people (see :func:`judge_vs_people`)."""

    n: int
    long_answer_words: int
    by_length: dict[str, GroupAgreement]
    by_position: dict[str, GroupAgreement] | None
    self_consistency: SelfConsistency | None
    unparsed: int
    unparsed_reasons: dict[str, int]
    cost: JudgeCost


@dataclass(slots=True)
class RunOverview:
    """All numbers of a run, in the run's label scheme: what ``agreement``, ``report`` and the web page show.

    ``agreement_note`` says why there is no agreement (and is left out of the
    JSON when there is one).
    """

    questions: int
    answers: AnswerCounts
    judges: dict[str, JudgeSummary]
    manual_labels: dict[str, int]
    auto_labels: dict[str, int]
    annotated: int
    retrieval: Summary | None
    agreement: AgreementReport | None
    agreement_note: str | None
    inter_annotator: InterAnnotatorReport | None
    ar_by_manual_label: dict[str, ScoreSummary]
    judge_vs_people: JudgeVsPeople | None

    @model_serializer(mode="wrap")
    def _json(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.agreement_note is None:
            del data["agreement_note"]
        return data


def manual_label(item: RunItem) -> str | None:
    """The item's manual label: the majority of its annotators (earliest wins a tie)."""
    labels = [a.label for a in item.annotations.values()]
    if not labels:
        return None
    counts = Counter(labels)
    best = max(counts.values())
    return next(label for label in labels if counts[label] == best)


def auto_label(item: RunItem) -> str | None:
    """The judge's predicted label, when it produced a readable one."""
    j = item.judgments.get("auto_label")
    return j.label if j is not None and j.parsed and j.label else None


def judgment_score(item: RunItem, kind: str) -> float | None:
    j = item.judgments.get(kind)
    return None if j is None or j.score is None else float(j.score)


def _judge_summary(items: list[RunItem], kind: str) -> JudgeSummary:
    judgments = [j for j in (i.judgments.get(kind) for i in items) if j is not None]
    scores = [float(j.score) for j in judgments if j.score is not None]
    unjudged = sum(1 for j in judgments if j.error == NO_JUDGE_ERROR and not j.parsed)
    errors = Counter(j.error for j in judgments if not j.parsed and j.error and j.error != NO_JUDGE_ERROR)
    return JudgeSummary(
        judged=len(judgments),  # 0: this judge was not asked for in the run
        n_scored=len(scores),
        mean=mean(scores) if scores else None,
        unparsed=sum(1 for j in judgments if not j.parsed) - unjudged,
        errors=dict(errors.most_common(3)),
        no_judge=unjudged,
    )


def _retrieval(items: list[RunItem]) -> Summary | None:
    results = []
    for item in items:
        if item.meta.evidence:
            q = Question(item.qid, item.question, item.meta.answer, list(item.meta.evidence))
            results.append(judge_hits(q, item.answer.hits))
    if not results:
        return None
    s = summarise(results)
    return Summary(s.n, s.metrics)


def _answer_counts(items: list[RunItem]) -> AnswerCounts:
    return AnswerCounts(
        extractive=sum(1 for i in items if i.answer.extractive),
        abstained=sum(1 for i in items if i.answer.abstained),
        no_citations=sum(1 for i in items if i.answer.no_citations),
        invalid_citations=sum(len(i.answer.invalid_citations) for i in items),
        llm_errors=sum(1 for i in items if i.answer.error),
    )


def run_summary(items: list[RunItem], scheme: LabelScheme = DEFAULT_SCHEME) -> RunOverview:
    """All numbers of a run, in the run's label scheme."""
    manual = [manual_label(i) for i in items]
    auto = [auto_label(i) for i in items]
    pairs = [(m, a) for m, a in zip(manual, auto, strict=True) if m and a]
    by_item = {i.qid: {who: a.label for who, a in i.annotations.items()} for i in items}
    annotators = {who for labels in by_item.values() for who in labels}
    ar = [judgment_score(i, "answer_relevance") for i in items]
    return RunOverview(
        questions=len(items),
        answers=_answer_counts(items),
        judges={k: _judge_summary(items, k) for k in KINDS if k != "auto_label"},
        manual_labels=dict(Counter(m for m in manual if m)),
        auto_labels=dict(Counter(a for a in auto if a)),
        annotated=sum(1 for m in manual if m),
        retrieval=_retrieval(items),
        agreement=agreement(
            [m for m, _ in pairs], [a for _, a in pairs], scheme.codes, ordinal=scheme.ordinal_codes
        ) if pairs else None,
        agreement_note=None if pairs else NO_PAIRS,
        inter_annotator=inter_annotator(by_item, list(scheme.codes)) if len(annotators) > 1 else None,
        ar_by_manual_label=score_distribution(ar, manual) if any(m for m in manual) else {},
        judge_vs_people=judge_vs_people(items, scheme) if pairs else None,
    )  # fmt: skip


# --------------------------------------------------------------------------- judge vs people


def _bucket(pairs: list[tuple[str, str]], scheme: LabelScheme) -> GroupAgreement:
    """Agreement inside one group of items, and how often the judge accepted what people rejected."""
    best, worst = scheme.ordinal_codes[0], scheme.ordinal_codes[-1]
    rejected = [a for m, a in pairs if m == worst]
    report = agreement([m for m, _ in pairs], [a for _, a in pairs], scheme.codes, ordinal=(), resamples=0)
    return GroupAgreement(
        n=len(pairs),
        accuracy=report.accuracy,
        kappa=report.kappa,
        rejected_by_people=len(rejected),
        accepted_by_judge=sum(a == best for a in rejected),
        false_accept=sum(a == best for a in rejected) / len(rejected) if rejected else None,
    )


def fact_position(answer: str, references: list[str]) -> str:
    """Where the first reference answer appears in the answer: ``início`` (first half), ``fim`` or ``ausente``."""
    text = fold_text(answer)
    found = [(text.find(fold_text(r)), len(r)) for r in references if fold_text(r)]
    hits = [(at, size) for at, size in found if at >= 0]
    if not hits:
        return "ausente"
    at, size = min(hits)
    return "início" if at / max(1, len(text) - size) < 0.5 else "fim"


def _self_consistency(items: list[RunItem], kind: str) -> SelfConsistency | None:
    twice = [(i.judgments[kind], i.judgments[kind + REPEAT]) for i in items if kind + REPEAT in i.judgments]
    twice = [(a, b) for a, b in twice if a is not None and b is not None]
    if not twice:
        return None
    same = sum((a.label, a.score_raw) == (b.label, b.score_raw) for a, b in twice)
    return SelfConsistency(
        n=len(twice),
        identical=same / len(twice),
        identical_text=sum(a.raw == b.raw for a, b in twice) / len(twice),
    )


def _cost(items: list[RunItem]) -> JudgeCost:
    judgments = [j for i in items for j in i.judgments.values()]
    seconds = sum(j.timing.total_s or 0.0 for j in judgments)
    judged = sum(1 for i in items if any(j.calls for j in i.judgments.values()))
    return JudgeCost(
        calls=sum(j.calls for j in judgments),
        prompt_tokens=sum(j.timing.prompt_tokens for j in judgments),
        completion_tokens=sum(j.timing.completion_tokens for j in judgments),
        seconds=seconds,
        seconds_per_item=seconds / judged if judged else None,
        transports=dict(Counter(j.transport for j in judgments if j.transport)),
    )


def judge_vs_people(items: list[RunItem], scheme: LabelScheme = DEFAULT_SCHEME) -> JudgeVsPeople:
    """The automated annotator measured against people, with its biases and its cost.

    * ``by_length``: agreement on short (up to :data:`LONG_ANSWER_WORDS`
      words) and long answers, and the share of answers people rejected that
      the judge accepted (Kamalloo et al.: judges accept wrong long answers);
    * ``by_position``: the same by where the correct fact (a reference
      answer) appears in the answer, where the items have references;
    * ``self_consistency``: items judged twice, share with the same verdict;
    * ``unparsed``: verdicts that could not be read (stored raw, never guessed);
    * ``cost``: LLM calls, tokens and seconds of every stored judgment.
    """
    labelled = [(i, manual_label(i)) for i in items]
    judged = [(i, m, i.judgments.get("auto_label")) for i, m in labelled if m and i.judgments.get("auto_label")]
    pairs = [(i, m, auto_label(i)) for i, m, _ in judged]
    scored = [(i, m, a) for i, m, a in pairs if a]
    by_length: dict[str, list[tuple[str, str]]] = {"curtas": [], "longas": []}
    by_position: dict[str, list[tuple[str, str]]] = {"início": [], "fim": [], "ausente": []}
    for item, m, a in scored:
        long = len(item.answer.text.split()) > LONG_ANSWER_WORDS
        by_length["longas" if long else "curtas"].append((m, a))
        refs = [r for r in (item.meta.answer or "").split(REFERENCE_SEPARATOR) if r.strip()]
        if refs:
            by_position[fact_position(item.answer.text, refs)].append((m, a))
    unparsed = [j for _, _, j in judged if j is not None and not j.parsed]
    has_position = any(by_position[k] for k in ("início", "fim"))
    return JudgeVsPeople(
        n=len(judged),
        long_answer_words=LONG_ANSWER_WORDS,
        by_length={k: _bucket(v, scheme) for k, v in by_length.items()},
        by_position={k: _bucket(v, scheme) for k, v in by_position.items()} if has_position else None,
        self_consistency=_self_consistency(items, "auto_label"),
        unparsed=len(unparsed),
        unparsed_reasons=dict(Counter(j.error for j in unparsed if j.error).most_common(3)),
        cost=_cost(items),
    )
