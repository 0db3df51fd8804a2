"""The no-LLM answer: the passages of the top segments closest to the question.

No instruction-following model that writes usable Portuguese ships offline,
so without a configured LLM the system still answers honestly: it quotes the
most relevant passages, each with its citation, and says it is extractive.
Passages are ranked with the same E5 embedder as retrieval, so no other model
is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pysbd

from lecture_rag.embed import Embedder
from lecture_rag.records import Hit

# Unpunctuated transcripts have no sentences: cut them into overlapping spans of
# this many words (half-overlapping, so an answer is never split between two spans).
SPAN_WORDS = 30
SPAN_STRIDE = 15

LABEL = {
    "pt": "Resposta extrativa (nenhum LLM configurado): trechos das aulas mais próximos da pergunta.",
    "en": "Extractive answer (no LLM configured): the lecture passages closest to the question.",
    "es": "Respuesta extractiva (ningún LLM configurado): fragmentos más cercanos a la pregunta.",
}


@dataclass(frozen=True, slots=True)
class Passage:
    number: int  # citation number of the segment it comes from
    text: str


def passages(hits: Sequence[Hit], max_segments: int) -> list[Passage]:
    """Sentences (or word spans, for unpunctuated text) of the top segments."""
    splitter = pysbd.Segmenter(language="en", clean=False)
    out: list[Passage] = []
    for number, hit in enumerate(hits[:max_segments], start=1):
        for sentence in splitter.segment(hit.text):
            words = sentence.split()
            if len(words) <= SPAN_WORDS:
                out.append(Passage(number, " ".join(words)))
                continue
            for i in range(0, len(words) - SPAN_STRIDE, SPAN_STRIDE):
                out.append(Passage(number, " ".join(words[i : i + SPAN_WORDS])))
    return [p for p in out if p.text]


def extractive_answer(
    question: str,
    hits: Sequence[Hit],
    embedder: Embedder,
    *,
    language: str = "pt",
    max_segments: int = 3,
    max_passages: int = 3,
) -> tuple[str, list[int]]:
    """(answer text with [n] citations, cited numbers) from the top hits."""
    candidates = passages(hits, max_segments)
    if not candidates:
        return "", []
    query = embedder.embed_queries([question])[0]
    vectors = embedder.embed_passages([p.text for p in candidates])
    scores = vectors @ query
    best = _non_overlapping(candidates, np.argsort(-scores).tolist(), max_passages)
    lines = [LABEL.get(language, LABEL["pt"])]
    lines += [f"- «{candidates[i].text}» [{candidates[i].number}]" for i in best]
    cited = list(dict.fromkeys(candidates[i].number for i in best))
    return "\n".join(lines), cited


def _non_overlapping(candidates: list[Passage], order: list[int], limit: int) -> list[int]:
    """Best-scoring spans that do not repeat words of an already chosen neighbour span."""
    chosen: list[int] = []
    for i in order:
        if all(abs(i - j) > 1 or candidates[i].number != candidates[j].number for j in chosen):
            chosen.append(i)
        if len(chosen) == limit:
            break
    return sorted(chosen, key=lambda i: (candidates[i].number, i))
