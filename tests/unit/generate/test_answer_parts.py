"""The sentence-level pieces of issue 13: packing around the best match, choosing and merging extractive quotes."""

from __future__ import annotations

import numpy as np

from lecture_rag.generate.context import pack_around_best
from lecture_rag.generate.extractive import Candidate, _choose, _merge, render
from lecture_rag.records import Hit
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
