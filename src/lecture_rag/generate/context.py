"""Fit retrieved segments into the model's context window.

Two ways. :func:`pack_around_best` (the default, ``[llm] context_budget``)
gives the model, per window, the sentences around its best match, up to a
token budget. :func:`pack` (``context_budget = 0``) gives whole windows:
segments are added in rank order; when the budget runs out the lowest-ranked
ones are dropped whole. Only when even the best segment does not fit is it
shortened, at a sentence boundary (or, for unpunctuated transcripts, a word
boundary marked with "[…]"), so no segment is ever cut mid-sentence silently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import pysbd

from lecture_rag.records import Hit, Piece
from lecture_rag.retrieve.cite import PieceSignals

TokenCounter = Callable[[str], int]


@dataclass(slots=True)
class Packed:
    hits: list[Hit]
    dropped: int
    shortened: bool


def pack(
    hits: Sequence[Hit],
    budget: int,
    count: TokenCounter,
    overhead_per_segment: int = 24,
) -> Packed:
    """Largest rank-ordered prefix of ``hits`` whose text fits ``budget`` tokens."""
    kept: list[Hit] = []
    used = 0
    for hit in hits:
        cost = count(hit.text) + overhead_per_segment
        if used + cost > budget:
            break
        kept.append(hit)
        used += cost
    if kept or not hits:
        return Packed(kept, len(hits) - len(kept), False)
    first = hits[0]
    text = shorten(first.text, budget - overhead_per_segment, count)
    if not text:
        return Packed([], len(hits), False)
    short = replace(first, text=text)
    return Packed([short], len(hits) - 1, True)


def shorten(text: str, budget: int, count: TokenCounter) -> str:
    """Whole sentences that fit; else whole words followed by an ellipsis marker."""
    if budget <= 0:
        return ""
    sentences = [s.strip() for s in pysbd.Segmenter(language="en", clean=False).segment(text) if s.strip()]
    out: list[str] = []
    for sentence in sentences:
        candidate = " ".join([*out, sentence])
        if count(candidate) > budget:
            break
        out.append(sentence)
    if out:
        return " ".join(out)
    words = text.split()
    lo, hi = 0, len(words)
    while lo < hi:  # binary search: the most words that still fit
        mid = (lo + hi + 1) // 2
        if count(" ".join(words[:mid]) + " […]") <= budget:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo]) + " […]" if lo else ""


def pack_around_best(
    hits: Sequence[Hit],
    signals: Sequence[PieceSignals],
    budget: int,
    count: TokenCounter,
    overhead_per_segment: int = 24,
) -> Packed:
    """Per window, the sentences around its best match, grown in turns until ``budget`` tokens are used.

    Why: a local model on two cores reads tens of tokens a second, so ten
    whole windows cost minutes before the first word; the evidence sits in
    a few sentences around the best-matching one (the cited second). Each
    window starts from its best piece (:meth:`PieceSignals.best`, the piece
    ``cite_start`` points at) and, in rank order, every window takes one
    more neighbouring piece per turn (after, then before), so the top
    windows keep their context and the lower ones still contribute their
    best sentence. The excerpt keeps its window's citation number, and its
    times are those of its first and last piece. Windows whose best piece
    no longer fits are dropped with all below them (counted in ``dropped``).
    """
    spans: list[_Span] = []
    used = 0
    for hit, sig in zip(hits, signals, strict=True):
        best = max(sig.best(), 0)
        if not sig.pieces:
            continue
        span = _Span(hit, sig.pieces, best, best + 1, count)
        cost = span.cost_of(best) + overhead_per_segment
        if used + cost > budget:
            break  # a rank-order prefix, as with whole windows: [n] numbers the same windows
        used += cost
        spans.append(span)
    growing = list(spans)
    while growing:
        for span in list(growing):
            step = span.next_piece()
            if step is None or used + span.cost_of(step) > budget:
                growing.remove(span)
                continue
            used += span.cost_of(step)
            span.take(step)
    kept = [span.hit_excerpt() for span in spans]
    return Packed(kept, len(hits) - len(kept), any(s.partial for s in spans))


@dataclass(slots=True)
class _Span:
    """The pieces ``[lo, hi)`` of one window chosen so far."""

    hit: Hit
    pieces: list[Piece]
    lo: int
    hi: int
    count: TokenCounter
    after_next: bool = True

    def cost_of(self, i: int) -> int:
        return self.count(self.pieces[i].text) + 1

    def next_piece(self) -> int | None:
        """The neighbour to add next: alternately after and before (the other side when one is exhausted)."""
        sides = [self.hi, self.lo - 1] if self.after_next else [self.lo - 1, self.hi]
        for i in sides:
            if 0 <= i < len(self.pieces):
                return i
        return None

    def take(self, i: int) -> None:
        if i == self.hi:
            self.hi += 1
        else:
            self.lo -= 1
        self.after_next = not self.after_next

    @property
    def partial(self) -> bool:
        return self.lo > 0 or self.hi < len(self.pieces)

    def hit_excerpt(self) -> Hit:
        chosen = self.pieces[self.lo : self.hi]
        text = " ".join(p.text for p in chosen)
        return replace(self.hit, text=text, start=chosen[0].start, end=chosen[-1].end, marks=())
