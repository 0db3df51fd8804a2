"""Retrieval metrics: Recall@k counts every evidence span a window overlaps; hit@k counts questions."""

from __future__ import annotations

import pytest

from lecture_rag.evaluate.retrieval import judge_hits, summarise
from lecture_rag.records import Evidence, Hit, Question


def _hit(corpus_id: int, video: str, start: float, end: float) -> Hit:
    return Hit(corpus_id, video, start, end, "texto", score=0.8)


def test_one_window_holding_two_spans_covers_both() -> None:
    """Before, each hit credited at most one span, so this question's Recall@1 was 0.5."""
    q = Question("q", "?", "a", [Evidence("v", 10, 20), Evidence("v", 60, 70)])
    result = judge_hits(q, [_hit(1, "v", 0, 120), _hit(2, "w", 0, 120)])
    assert result.recall(1) == 1.0 and result.recall(10) == 1.0
    assert result.hit(1) == 1.0 and result.mrr(10) == 1.0


def test_recall_counts_spans_and_hit_counts_questions() -> None:
    two_spans = Question("q1", "?", "a", [Evidence("v", 10, 20), Evidence("v", 300, 310)])
    hits = [_hit(1, "w", 0, 120), _hit(2, "v", 0, 120), _hit(3, "v", 240, 360)]
    result = judge_hits(two_spans, hits)
    assert result.recall(1) == 0.0 and result.hit(1) == 0.0
    assert result.recall(2) == 0.5 and result.hit(2) == 1.0
    assert result.recall(3) == 1.0 and result.mrr(10) == 0.5
    missed = judge_hits(Question("q2", "?", "a", [Evidence("x", 0, 5)]), hits)
    summary = summarise([result, missed])
    assert summary.n == 2
    assert summary.metrics["recall@5"] == pytest.approx(0.5)  # (1.0 + 0.0) / 2
    assert summary.metrics["hit@1"] == 0.0 and summary.metrics["hit@5"] == pytest.approx(0.5)


def test_ndcg_does_not_reward_two_windows_on_one_span() -> None:
    q = Question("q", "?", "a", [Evidence("v", 50, 70)])
    adjacent = [_hit(1, "v", 0, 60), _hit(2, "v", 60, 120)]  # both overlap the one span
    result = judge_hits(q, adjacent)
    assert result.ranks == [1] and result.ndcg(10) == 1.0 and result.recall(10) == 1.0
