"""Fit retrieved segments into the model's context window.

Segments are added in rank order; when the budget runs out the lowest-ranked
ones are dropped whole. Only when even the best segment does not fit is it
shortened, at a sentence boundary (or, for unpunctuated transcripts, a word
boundary marked with "[…]"), so no segment is ever cut mid-sentence silently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import pysbd

from lecture_rag.records import Hit

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
