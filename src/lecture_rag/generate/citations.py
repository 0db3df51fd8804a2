"""Citations ``[n]`` in an answer → validated numbers and per-video references."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from lecture_rag.generate.language import NOT_FOUND
from lecture_rag.records import CitedTime, Hit, Reference

# [1]  [1, 2]  [1,2]  [1-3]  [1–3]  [1; 2]
_GROUP = re.compile(r"\[(\s*\d+\s*(?:[-–,;]\s*\d+\s*)*)\]")
_ABSTAIN = [
    "nao encontrei a resposta",
    "nao encontrei essa informacao",
    "nao ha informacao",
    "nao contem a resposta",
    "nao contem informacoes",
    "os trechos nao",
    "as aulas nao abordam",
    "could not find the answer",
    "couldn't find the answer",
    "do not contain the answer",
    "don't contain the answer",
    "no encontre la respuesta",
]


def parse_citations(text: str) -> list[int]:
    """Cited numbers in order of first appearance (ranges expanded)."""
    seen: dict[int, None] = {}
    for group in _GROUP.findall(text):
        for part in re.split(r"[,;]", group):
            bounds = [int(x) for x in re.split(r"[-–]", part) if x.strip()]
            if len(bounds) == 2 and 0 < bounds[1] - bounds[0] < 50:
                numbers = range(bounds[0], bounds[1] + 1)
            else:
                numbers = range(bounds[0], bounds[0] + 1) if bounds else range(0)
            for n in numbers:
                seen.setdefault(n, None)
    return list(seen)


def split_valid(cited: Sequence[int], n_context: int) -> tuple[list[int], list[int]]:
    """Numbers that point to a context segment, and the others (a defect)."""
    valid = [n for n in cited if 1 <= n <= n_context]
    invalid = [n for n in cited if not 1 <= n <= n_context]
    return valid, invalid


def references(valid: Sequence[int], context: Sequence[Hit]) -> list[Reference]:
    """Each cited video once, in order of first citation, with every cited second.

    A citation has one second: ``context[n-1].cite_start``, where the
    sentence that answers begins (see :mod:`lecture_rag.retrieve.cite`; the
    extractive answer sets it to its quote's start). The quote line, ``[n]``,
    the reference button, the hover, the player and the record's links all
    read it, never the window start.
    """
    refs: dict[str, Reference] = {}
    for n in valid:
        hit = context[n - 1]
        second = hit.cite_start
        ref = refs.setdefault(hit.video_id, Reference(hit.video_id, hit.title or hit.video_id, hit.video_url))
        if all(t.corpus_id != hit.corpus_id or t.start != second for t in ref.times):
            ref.times.append(CitedTime(n, hit.corpus_id, second, hit.url_at(second)))
    return list(refs.values())


def _fold(text: str) -> str:
    norm = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in norm if not unicodedata.combining(c)).replace("’", "'")


def is_abstention(text: str) -> bool:
    """The model said the lectures do not hold the answer."""
    folded = _fold(text)
    phrases = [*_ABSTAIN, *(_fold(p).rstrip(".") for p in NOT_FOUND.values())]
    return any(p in folded for p in phrases)
