"""Retrieval metrics over a question set: Recall@k, hit@k, MRR@10, nDCG@10.

A hit is relevant when it comes from an evidence span's video and its time
range overlaps that span. Over a question's top k hits:

* **Recall@k** is the share of the question's evidence spans that at least
  one of the top k hits overlaps (one window holding two spans covers both);
* **hit@k** is 1 when any of the top k hits is relevant, else 0 (averaged:
  the share of questions with a relevant hit in the top k);
* **MRR@10** is 1 / the rank of the first relevant hit (0 beyond 10);
* **nDCG@10** credits each hit with one evidence span no earlier hit was
  credited with (binary gain), against the ideal of one new span per rank,
  so two adjacent windows covering the same span do not inflate it.

And where the links land: the **link offset** of a question is the absolute
difference, in seconds, between the cited second (``cite_start``) of its first
relevant hit and the start of the evidence span that hit overlaps (the
nearest, when it overlaps several); reported as median and 90th percentile,
beside the same figure for a link at the window start.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import Field, SerializerFunctionWrapHandler, model_serializer
from pydantic.dataclasses import dataclass as record

from lecture_rag.records import Evidence, Hit, Question
from lecture_rag.wire import spliced

CUTOFFS = (1, 5, 10)


def overlaps(hit: Hit, ev: Evidence) -> bool:
    return hit.video_id == ev.video_id and hit.start <= ev.end and ev.start <= hit.end


@dataclass(slots=True)
class QuestionResult:
    question: Question
    ranks: list[int]  # 1-based ranks of hits credited with an evidence span (one span per hit), for nDCG/MRR
    top_score: float | None
    span_ranks: list[int | None] = field(default_factory=list)  # per evidence span: first hit overlapping it
    offset: float | None = None  # seconds from the first relevant hit's cite_start to its evidence start
    window_offset: float | None = None  # the same from the window start (what a link without cite_start gives)

    @property
    def first_rank(self) -> int | None:
        """Rank of the first relevant hit (None when none was retrieved)."""
        return min((r for r in self.span_ranks if r is not None), default=None)

    def recall(self, k: int) -> float:
        """Share of evidence spans overlapped by at least one of the top ``k`` hits."""
        covered = sum(1 for r in self.span_ranks if r is not None and r <= k)
        return covered / max(1, len(self.question.evidence))

    def hit(self, k: int) -> float:
        """1.0 when a relevant hit is among the top ``k``, else 0.0."""
        return 1.0 if self.ranks and self.ranks[0] <= k else 0.0

    def mrr(self, k: int = 10) -> float:
        first = min((r for r in self.ranks if r <= k), default=None)
        return 0.0 if first is None else 1.0 / first

    def ndcg(self, k: int = 10) -> float:
        dcg = sum(1.0 / math.log2(r + 1) for r in self.ranks if r <= k)
        ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(self.question.evidence))))
        return dcg / ideal if ideal else 0.0


def judge_hits(question: Question, hits: Sequence[Hit]) -> QuestionResult:
    """Ranks at which hits first cover each evidence span."""
    credited: set[int] = set()
    ranks: list[int] = []
    span_ranks: list[int | None] = [None] * len(question.evidence)
    for rank, hit in enumerate(hits, start=1):
        covered = [i for i, ev in enumerate(question.evidence) if overlaps(hit, ev)]
        for i in covered:
            if span_ranks[i] is None:
                span_ranks[i] = rank
        fresh = [i for i in covered if i not in credited]
        if fresh:  # nDCG's binary gain: one credit per hit, for the first span no earlier hit was credited with
            credited.add(fresh[0])
            ranks.append(rank)
    top = hits[0].score if hits else None
    result = QuestionResult(question, ranks, top, span_ranks)
    if result.first_rank is not None:
        hit = hits[result.first_rank - 1]
        starts = [ev.start for ev in question.evidence if overlaps(hit, ev)]
        result.offset = min(abs(hit.cite_start - s) for s in starts)
        result.window_offset = min(abs(hit.start - s) for s in starts)
    return result


@record(slots=True)
class Summary:
    """Metrics over a set of questions (named as in :data:`CUTOFFS`'s ``recall@k``), and the link offsets.

    The JSON lists ``n``, the metrics and the offsets side by side.
    """

    n: int
    metrics: dict[str, float]
    offsets: dict[str, float | None] = field(default_factory=dict)

    @model_serializer(mode="wrap")
    def _flat(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return spliced(handler(self), "metrics", "offsets")


def summarise(results: Sequence[QuestionResult]) -> Summary:
    answerable = [r for r in results if r.question.evidence]
    n = len(answerable)
    metrics: dict[str, float] = {}
    for k in CUTOFFS:
        metrics[f"recall@{k}"] = sum(r.recall(k) for r in answerable) / n if n else 0.0
    for k in CUTOFFS:
        metrics[f"hit@{k}"] = sum(r.hit(k) for r in answerable) / n if n else 0.0
    metrics["mrr@10"] = sum(r.mrr(10) for r in answerable) / n if n else 0.0
    metrics["ndcg@10"] = sum(r.ndcg(10) for r in answerable) / n if n else 0.0
    return Summary(n, metrics, link_offsets(answerable))


def link_offsets(results: Sequence[QuestionResult]) -> dict[str, float | None]:
    """Median and 90th percentile of the link offsets, and of the window-start offsets, in seconds."""
    cited = [r.offset for r in results if r.offset is not None]
    window = [r.window_offset for r in results if r.window_offset is not None]

    def pct(values: list[float], q: float) -> float | None:
        return float(np.percentile(values, q)) if values else None

    return {
        "offset_median": pct(cited, 50),
        "offset_p90": pct(cited, 90),
        "window_offset_median": pct(window, 50),
        "window_offset_p90": pct(window, 90),
    }


@record(slots=True, kw_only=True)
class QuestionDetail:
    """One question's line of ``eval retrieval --details``: where its first relevant hit came, where links land."""

    id: str
    type: str
    answerable: bool
    first_rank: int | None
    recall_at_10: float | None = Field(serialization_alias="recall@10")
    offset: float | None
    window_offset: float | None
    top1_cosine: float | None


def details(results: Sequence[QuestionResult]) -> list[QuestionDetail]:
    """Per question: id, type, rank of the first relevant hit, recall@10, and the link offsets."""
    return [
        QuestionDetail(
            id=r.question.id,
            type=r.question.type,
            answerable=bool(r.question.evidence),
            first_rank=r.first_rank,
            recall_at_10=r.recall(10) if r.question.evidence else None,
            offset=r.offset,
            window_offset=r.window_offset,
            top1_cosine=r.top_score,
        )
        for r in results
    ]


def by_type(results: Sequence[QuestionResult]) -> dict[str, Summary]:
    groups: dict[str, list[QuestionResult]] = defaultdict(list)
    for r in results:
        if r.question.evidence:
            groups[r.question.type or "-"].append(r)
    return {t: summarise(rs) for t, rs in sorted(groups.items())}


def evaluate(
    questions: Sequence[Question],
    search: Callable[[str], Sequence[Hit]],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> list[QuestionResult]:
    """Run every question through ``search`` (already bound to k and mode)."""
    results = []
    for i, q in enumerate(questions, start=1):
        results.append(judge_hits(q, search(q.question)))
        if progress:
            progress(i, len(questions))
    return results


@record(slots=True)
class TopScoreGap:
    """Mean top-1 cosine of answerable and of unanswerable questions: how well a threshold could abstain."""

    answerable_top1_cosine: float | None
    unanswerable_top1_cosine: float | None


def unanswerable_gap(results: Sequence[QuestionResult]) -> TopScoreGap:
    """Mean top-1 cosine for answerable vs unanswerable questions (abstention signal)."""

    def mean(values: list[float]) -> float | None:
        return sum(values) / len(values) if values else None

    yes = [r.top_score for r in results if r.question.evidence and r.top_score is not None]
    no = [r.top_score for r in results if not r.question.answerable and r.top_score is not None]
    return TopScoreGap(mean(yes), mean(no))


@record(slots=True)
class ModeReport:
    """One retrieval mode (and reranker) over a question set: overall, by question type, per question.

    ``questions`` is None unless asked for (``--details``); the JSON lists the
    overall numbers and the gap at the top level, as ``eval retrieval`` always has.
    """

    overall: Summary
    gap: TopScoreGap
    by_type: dict[str, Summary]
    questions: list[QuestionDetail] | None = None

    @model_serializer(mode="wrap")
    def _flat(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = spliced(handler(self), "overall", "gap")
        if self.questions is None:
            del data["questions"]
        return data


@record(slots=True)
class RetrievalReport:
    """What ``eval retrieval`` reports: the question set's size, k, and one :class:`ModeReport` per mode."""

    questions: int
    k: int
    modes: dict[str, ModeReport] = field(default_factory=dict)


def mode_report(results: Sequence[QuestionResult], *, with_details: bool) -> ModeReport:
    """The report of one mode's results; ``with_details`` adds the per-question lines."""
    return ModeReport(
        overall=summarise(results),
        gap=unanswerable_gap(results),
        by_type=by_type(results),
        questions=details(results) if with_details else None,
    )
