"""Which sentences an extractive answer may quote: whole clauses, from the lecture that answers.

Why (issue 22): answers quoted 2-word fragments («não existe», «é feito em
crises») and mixed in sentences of other lectures and courses that happened
to share a word, which a student reads as noise. Two rules, measured with
``python -m bench.bench_heldout`` (docs/retrieval.md):

* :func:`join_short`: a timed piece shorter than :data:`MIN_CLAUSE_WORDS`
  words joins the piece after it (the last one joins the one before), so
  every quotable span is at least a clause and still starts at a piece's
  own second (the cited second stays a sentence start);
* :func:`focus`: sentences of the best-ranked lecture, and of another one
  only when it is closer to the question than everything the first has.

And one for the words a quote spends its budget on: :func:`fluent` leaves out
what speech adds and a reader does not need, the pure hesitations of
:data:`HESITATIONS` and a word (or two-word group) said twice in a row, so the
:data:`~lecture_rag.generate.extractive.MAX_WORDS` go to what the lecturer
says. Only deletions: the words kept stay in order, and a quote still starts
at its piece's second.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

import numpy as np

from lecture_rag.records import Piece

#: A piece with fewer words is a fragment, not a clause: it joins its neighbour.
MIN_CLAUSE_WORDS = 6
#: Pure hesitations and fillers of spoken Portuguese (NURC-SP transcripts and wav2vec2/Whisper output):
#: sounds, never words that carry content (``é``, ``a``, ``então``... are words and stay).
HESITATIONS = frozenset({"ah", "ahn", "ãh", "eh", "éh", "ehn", "hã", "hum", "hm", "hmm", "uh", "uhm", "uhn", "né"})


class Scored(Protocol):
    """A quotable candidate: where it comes from and its own E5 cosine to the question."""

    @property
    def video_id(self) -> str: ...

    @property
    def cosine(self) -> float: ...


S = TypeVar("S", bound=Scored)


def join_short(
    pieces: Sequence[Piece], semantic: np.ndarray, lexical: np.ndarray, min_words: int = MIN_CLAUSE_WORDS
) -> tuple[list[Piece], list[float], list[float]]:
    """``pieces`` with each fragment shorter than ``min_words`` joined to the next (the last one to the previous).

    A joined span keeps the first piece's start and the best of both signals.
    """
    out: list[Piece] = []
    sem: list[float] = []
    lex: list[float] = []
    for piece, s, x in zip(pieces, semantic, lexical, strict=True):
        if out and len(out[-1].text.split()) < min_words:
            out[-1] = Piece(out[-1].start, max(out[-1].end, piece.end), f"{out[-1].text} {piece.text}")
            sem[-1], lex[-1] = max(sem[-1], float(s)), max(lex[-1], float(x))
            continue
        out.append(piece)
        sem.append(float(s))
        lex.append(float(x))
    if len(out) > 1 and len(out[-1].text.split()) < min_words:
        last = out.pop()
        out[-1] = Piece(out[-1].start, max(out[-1].end, last.end), f"{out[-1].text} {last.text}")
        s, x = sem.pop(), lex.pop()
        sem[-1], lex[-1] = max(sem[-1], s), max(lex[-1], x)
    return out, sem, lex


def fluent(text: str) -> str:
    """``text`` without hesitations (:data:`HESITATIONS`) and without a word or two-word group said twice in a row."""
    words = [w for w in text.split() if w.lower().strip(".,;:!?…") not in HESITATIONS]
    out: list[str] = []
    for word in words:
        if out and word.lower() == out[-1].lower():
            continue
        if len(out) >= 3 and (out[-3].lower(), out[-2].lower()) == (out[-1].lower(), word.lower()):
            out.pop()  # "de que de que": the second group goes
            continue
        out.append(word)
    return " ".join(out)


def focus(ranked: Sequence[S], video_id: str) -> list[S]:
    """Candidates of ``video_id`` (the best-ranked lecture), and others only where they beat its best one."""
    best = max((c.cosine for c in ranked if c.video_id == video_id), default=float("-inf"))
    return [c for c in ranked if c.video_id == video_id or c.cosine > best]
