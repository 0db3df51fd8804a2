"""The sentence-level pieces of issue 13: packing around the best match, choosing and merging extractive quotes."""

from __future__ import annotations

import numpy as np
import pytest

from lecture_rag.generate.context import pack_around_best
from lecture_rag.generate.extractive import Candidate, _choose, _lead, _merge, _spans, render
from lecture_rag.records import Hit, Piece
from lecture_rag.retrieve.cite import PieceSignals


def _window(corpus_id: int, sentences: list[str], start: float = 0.0) -> Hit:
    text, marks, offset = "", [], 0
    for i, sentence in enumerate(sentences):
        marks.append((start + 10.0 * i, offset))
        text += sentence + " "
        offset = len(text)
    return Hit(corpus_id, "v", start, start + 10.0 * len(sentences), text.strip(), marks=tuple(marks))


def _signals(hit: Hit, best: int) -> PieceSignals:
    pieces = hit.pieces()
    semantic = np.full(len(pieces), 0.8)
    semantic[best] = 0.9
    return PieceSignals(pieces, semantic, np.zeros(len(pieces)))


def words(n: int, tag: str) -> str:
    return " ".join(f"{tag}{i}" for i in range(n))


def count(text: str) -> int:
    return len(text.split())


def test_packing_starts_at_the_best_piece_and_grows_around_it_within_budget() -> None:
    hits = [
        _window(1, [words(10, f"a{i}_") for i in range(8)]),
        _window(2, [words(10, f"b{i}_") for i in range(8)], 500),
    ]
    signals = [_signals(hits[0], 5), _signals(hits[1], 0)]
    packed = pack_around_best(hits, signals, budget=2 * 24 + 2 * 33, count=count)
    assert [h.corpus_id for h in packed.hits] == [1, 2] and packed.dropped == 0 and packed.shortened
    first, second = packed.hits
    assert first.text.startswith("a4_0") and "a5_0" in first.text and "a6_0" in first.text  # best, after, before
    assert (first.start, first.end) == (40.0, 70.0) and first.cite_start == 40.0
    assert second.text.startswith("b0_0") and second.start == 500.0
    assert sum(count(h.text) + 24 for h in packed.hits) <= 2 * 24 + 2 * 33


def test_packing_drops_the_windows_below_one_that_does_not_fit() -> None:
    hits = [_window(1, [words(10, "a")]), _window(2, [words(60, "b")], 500), _window(3, [words(5, "c")], 900)]
    packed = pack_around_best(hits, [_signals(h, 0) for h in hits], budget=60, count=count)
    assert [h.corpus_id for h in packed.hits] == [1] and packed.dropped == 2


def _cand(number: int, order: int, text: str, score: float, start: float) -> Candidate:
    return Candidate(number, "v", order, start, start + 5, text, 0.0, 0.0, score)


def test_quotes_skip_repeats_fit_the_budget_and_merge_neighbours_best_first() -> None:
    ranked = [
        _cand(2, 3, "o paleolítico durou muito tempo", 0.9, 100.0),
        _cand(1, 7, "o paleolítico durou muito tempo mesmo", 0.8, 100.0),  # overlapping window, same words
        _cand(2, 4, "cerca de dois milhões de anos", 0.7, 105.0),
        _cand(1, 1, words(80, "x"), 0.6, 10.0),  # too long for what is left
        _cand(3, 0, "a arte rupestre aparece depois", 0.5, 900.0),
    ]
    chosen = _choose(ranked, max_words=20)
    assert [c.text[:10] for c in chosen] == ["o paleolít", "cerca de d", "a arte rup"]
    quotes = _merge(chosen)
    assert [(q.number, q.start) for q in quotes] == [(2, 100.0), (3, 900.0)]
    assert quotes[0].text == "o paleolítico durou muito tempo cerca de dois milhões de anos"
    text = render(quotes, "pt")
    assert text.splitlines()[0].startswith("Resposta extrativa")
    assert text.splitlines()[1] == "- 00:01:40 «o paleolítico durou muito tempo cerca de dois milhões de anos» [2]"


def test_a_window_is_quoted_once_from_its_answering_sentence_on() -> None:
    ranked = [
        _cand(1, 5, "a cana de açúcar era o principal produto", 0.9, 40.0),
        _cand(1, 4, "antes disso falamos dos portugueses", 0.8, 33.0),  # the sentence before: never leads the quote
        _cand(1, 9, "o ouro veio depois em minas", 0.7, 80.0),  # the same window, not next to the run
        _cand(1, 6, "exportado para a europa", 0.6, 46.0),  # continues the run
        _cand(2, 0, "os engenhos usavam trabalho escravo", 0.5, 300.0),
    ]
    quotes = _merge(_choose(ranked, max_words=60))
    assert [(q.number, q.start) for q in quotes] == [(1, 40.0), (2, 300.0)]
    assert quotes[0].text == "a cana de açúcar era o principal produto exportado para a europa"


def test_the_best_span_leads_with_the_spans_that_follow_it_in_its_window() -> None:
    """What follows the sentence that answers completes it (issue 22): it is quoted before other windows' spans."""
    best = _cand(1, 5, "a cana de açúcar era o principal produto", 0.9, 40.0)
    other = _cand(2, 0, "os engenhos usavam trabalho escravo", 0.8, 300.0)
    before = _cand(1, 4, "antes disso falamos dos portugueses", 0.7, 33.0)
    after = _cand(1, 6, "exportado para a europa pelos portugueses", 0.1, 46.0)
    later = _cand(1, 7, "e vendido nos portos do norte", 0.05, 50.0)
    led = _lead([best, other, before, after, later], follow=3)
    assert led == [best, after, later, other, before]
    quotes = _merge(_choose(led, max_words=22))
    assert [(q.number, q.start) for q in quotes] == [(1, 40.0)]
    assert quotes[0].text.endswith("e vendido nos portos do norte")
    assert _lead([best, other, after], follow=0) == [best, other, after]


def test_a_long_utterance_is_cut_into_equal_spans_never_a_fragment() -> None:
    """A 31-word unpunctuated utterance cut at 15 words gave a 1-word span; equal spans keep every one a clause."""
    piece = Piece(100.0, 131.0, words(31, "w"))
    spans = _spans(piece, 15)
    assert [len(s.text.split()) for s in spans] == [10, 11, 10]
    assert " ".join(s.text for s in spans) == piece.text
    assert spans[0].start == 100.0 and spans[-1].end == pytest.approx(131.0)
    assert [s.start for s in spans] == sorted(s.start for s in spans)
    assert _spans(Piece(0.0, 5.0, words(15, "w")), 15) == [Piece(0.0, 5.0, words(15, "w"))]
