"""Retrieval metrics over a question set: Recall@k, MRR@10, nDCG@10.

A hit is relevant when it comes from an evidence span's video and its time
range overlaps that span. Each evidence span is credited once, so two
adjacent windows covering the same span do not inflate recall or nDCG.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from lecture_rag.evaluate.questions import Evidence, Question
from lecture_rag.records import Hit

CUTOFFS = (1, 5, 10)


def overlaps(hit: Hit, ev: Evidence) -> bool:
    seg = hit.segment
    return seg.video_id == ev.video_id and seg.start <= ev.end and ev.start <= seg.end


@dataclass(slots=True)
class QuestionResult:
    question: Question
    ranks: list[int]  # 1-based ranks of hits that credit a new evidence span
    top_score: float | None
    hit_ids: list[int] = field(default_factory=list)

    def recall(self, k: int) -> float:
        return sum(1 for r in self.ranks if r <= k) / max(1, len(self.question.evidence))

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
    for rank, hit in enumerate(hits, start=1):
        for idx, ev in enumerate(question.evidence):
            if idx not in credited and overlaps(hit, ev):
                credited.add(idx)
                ranks.append(rank)
                break
    top = hits[0].score if hits else None
    return QuestionResult(question, ranks, top, [h.segment.corpus_id for h in hits])


@dataclass(slots=True)
class Summary:
    n: int
    metrics: dict[str, float]


def summarise(results: Sequence[QuestionResult]) -> Summary:
    answerable = [r for r in results if r.question.evidence]
    n = len(answerable)
    metrics: dict[str, float] = {}
    for k in CUTOFFS:
        metrics[f"recall@{k}"] = sum(r.recall(k) for r in answerable) / n if n else 0.0
    metrics["mrr@10"] = sum(r.mrr(10) for r in answerable) / n if n else 0.0
    metrics["ndcg@10"] = sum(r.ndcg(10) for r in answerable) / n if n else 0.0
    return Summary(n, metrics)


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


def unanswerable_gap(results: Sequence[QuestionResult]) -> dict[str, float | None]:
    """Mean top-1 cosine for answerable vs unanswerable questions (abstention signal)."""

    def mean(values: list[float]) -> float | None:
        return sum(values) / len(values) if values else None

    yes = [r.top_score for r in results if r.question.evidence and r.top_score is not None]
    no = [r.top_score for r in results if not r.question.answerable and r.top_score is not None]
    return {"answerable_top1_cosine": mean(yes), "unanswerable_top1_cosine": mean(no)}
