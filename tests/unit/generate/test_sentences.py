"""Issue 22's sentence rules: quotes are whole clauses, from the lecture that answers."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from lecture_rag.generate.extractive import candidates
from lecture_rag.generate.sentences import HESITATIONS, MIN_CLAUSE_WORDS, fluent, focus, join_short
from lecture_rag.records import Hit, Piece
from lecture_rag.retrieve.cite import PieceSignals


def _pieces(*texts: str) -> list[Piece]:
    return [Piece(10.0 * i, 10.0 * i + 9.0, t) for i, t in enumerate(texts)]


def test_a_fragment_joins_the_clause_after_it_and_keeps_its_own_start() -> None:
    pieces = _pieces("não existe", "o passado para os hopi como nós o pensamos", "é feito em crises")
    out, sem, lex = join_short(pieces, np.asarray([0.9, 0.5, 0.7]), np.asarray([0.1, 0.4, 0.2]))
    assert [p.text for p in out] == [
        "não existe o passado para os hopi como nós o pensamos é feito em crises",
    ]
    assert out[0].start == 0.0 and out[0].end == 29.0
    assert sem == [0.9] and lex == [0.4]


def test_clauses_stay_apart_and_a_last_fragment_joins_the_one_before() -> None:
    pieces = _pieces("a arte do paleolítico aparece nas cavernas", "e também nos objetos de osso e pedra", "sim")
    out, _, _ = join_short(pieces, np.zeros(3), np.zeros(3))
    assert [p.start for p in out] == [0.0, 10.0]
    assert out[1].text.endswith("pedra sim")
    assert all(len(p.text.split()) >= MIN_CLAUSE_WORDS for p in out)


def test_candidates_of_real_windows_are_never_shorter_than_a_clause_unless_the_window_is() -> None:
    text = "não existe. o passado para os hopi é como uma coisa que não termina. é feito em crises."
    marks = ((0.0, 0), (3.0, 12), (9.0, 70))
    hit = Hit(1, "SP_EF_124", 0.0, 12.0, text, marks=marks)
    pieces = hit.pieces()
    signals = PieceSignals(pieces, np.full(len(pieces), 0.8), np.zeros(len(pieces)))
    spans = candidates([hit], [signals])
    assert [c.start for c in spans] == [0.0]  # one clause, quoted from the first piece's second
    old = candidates([hit], [signals], min_words=0)
    assert [c.text for c in old] == [p.text for p in pieces]


@dataclass
class _C:
    video_id: str
    cosine: float


def test_other_lectures_are_quoted_only_when_closer_than_everything_the_best_one_has() -> None:
    ranked = [_C("a", 0.85), _C("b", 0.84), _C("a", 0.83), _C("c", 0.90)]
    assert focus(ranked, "a") == [ranked[0], ranked[2], ranked[3]]
    assert focus(ranked, "z") == ranked  # nothing of that lecture: nothing to prefer


def test_a_quote_never_spends_words_on_hesitations_or_words_said_twice() -> None:
    text = "então eh né a a gente vê que ahn o passado de que de que forma éh termina"
    assert fluent(text) == "então a gente vê que o passado de que forma termina"
    assert fluent("é a arte é a forma") == "é a arte é a forma"  # words, not sounds: kept


def test_candidates_quote_fluent_text_from_each_piece_own_second() -> None:
    pieces = _pieces("eh né", "ahn a a arte do paleolítico aparece nas cavernas né", "e nos objetos de osso")
    hit = Hit(1, "SP_EF_124", 0.0, 29.0, " ".join(p.text for p in pieces))
    spans = candidates([hit], [PieceSignals(pieces, np.full(3, 0.8), np.zeros(3))], clean=True)
    words = [w for c in spans for w in c.text.split()]
    assert not set(words) & HESITATIONS
    assert all(a != b for a, b in pairwise(words))
    assert [(c.start, c.text) for c in spans] == [
        (10.0, "a arte do paleolítico aparece nas cavernas e nos objetos de osso")
    ]
