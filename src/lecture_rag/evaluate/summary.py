"""What a course team reads about a run: agreement, score distributions, retrieval metrics.

Built from a run's stored items only, so the CLI, the reports and the web
page always show the same numbers.
"""

from __future__ import annotations

from collections import Counter
from statistics import mean
from typing import Any

from lecture_rag.evaluate.agreement import agreement, inter_annotator, score_distribution
from lecture_rag.evaluate.judges import KINDS
from lecture_rag.evaluate.labels import DEFAULT_SCHEME, LabelScheme
from lecture_rag.evaluate.retrieval import judge_hits, summarise
from lecture_rag.records import Question, RunItem


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


def _judge_summary(items: list[RunItem], kind: str) -> dict[str, Any]:
    judgments = [j for j in (i.judgments.get(kind) for i in items) if j is not None]
    scores = [float(j.score) for j in judgments if j.score is not None]
    errors = Counter(j.error for j in judgments if not j.parsed and j.error)
    return {
        "judged": len(judgments),  # 0: this judge was not asked for in the run
        "n_scored": len(scores),
        "mean": mean(scores) if scores else None,
        "unparsed": sum(1 for j in judgments if not j.parsed),
        "errors": dict(errors.most_common(3)),
    }


def _retrieval(items: list[RunItem]) -> dict[str, Any] | None:
    results = []
    for item in items:
        if item.meta.evidence:
            q = Question(item.qid, item.question, item.meta.answer, list(item.meta.evidence))
            results.append(judge_hits(q, item.answer.hits))
    if not results:
        return None
    s = summarise(results)
    return {"n": s.n, **s.metrics}


def run_summary(items: list[RunItem], scheme: LabelScheme = DEFAULT_SCHEME) -> dict[str, Any]:
    """All numbers of a run, JSON-ready, in the run's label scheme."""
    manual = [manual_label(i) for i in items]
    auto = [auto_label(i) for i in items]
    out: dict[str, Any] = {
        "questions": len(items),
        "answers": {
            "extractive": sum(1 for i in items if i.answer.extractive),
            "abstained": sum(1 for i in items if i.answer.abstained),
            "no_citations": sum(1 for i in items if i.answer.no_citations),
            "invalid_citations": sum(len(i.answer.invalid_citations) for i in items),
            "llm_errors": sum(1 for i in items if i.answer.error),
        },
        "judges": {k: _judge_summary(items, k) for k in KINDS if k != "auto_label"},
        "manual_labels": dict(Counter(m for m in manual if m)),
        "auto_labels": dict(Counter(a for a in auto if a)),
        "annotated": sum(1 for m in manual if m),
        "retrieval": _retrieval(items),
    }
    pairs = [(m, a) for m, a in zip(manual, auto, strict=True) if m and a]
    if pairs:
        out["agreement"] = agreement(
            [m for m, _ in pairs], [a for _, a in pairs], scheme.codes, ordinal=scheme.ordinal_codes
        ).to_dict()
    else:
        out["agreement"] = None
        out["agreement_note"] = (
            "sem pares de anotação manual e automatizada: anote com 'lecture-rag annotate' "
            "e configure um juiz (LECTURE_RAG_JUDGE_LLM_*)"
        )
    by_item = {i.qid: {who: a.label for who, a in i.annotations.items()} for i in items}
    annotators = {who for labels in by_item.values() for who in labels}
    out["inter_annotator"] = inter_annotator(by_item, list(scheme.codes)).to_dict() if len(annotators) > 1 else None
    ar = [judgment_score(i, "answer_relevance") for i in items]
    out["ar_by_manual_label"] = score_distribution(ar, manual) if any(m for m in manual) else {}
    return out
