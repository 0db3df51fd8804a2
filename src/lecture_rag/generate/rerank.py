"""Pick the reranker a setting names, including the LLM listwise one (which needs an LLM, hence this layer).

``make_reranker`` is the one place a reranker name becomes an object: the
CLI, the web app and ``eval retrieval`` all go through it.

The LLM reranker shows the model the question and the candidates (numbered,
each cut to its first words) and asks for their numbers, most relevant first
(a "listwise" ranking, as in RankGPT). Candidates it does not name keep their
first-stage order after the ones it names; numbers that do not exist are
ignored. Off by default: on 2 cores with a local model it costs seconds per
question, and its quality is the plugged-in model's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lecture_rag.config import LLMSettings, Reranking, Settings
from lecture_rag.errors import LectureRagError
from lecture_rag.generate.llm import LLM, make_llm
from lecture_rag.records import Hit
from lecture_rag.retrieve.rerank import RERANKERS, CrossEncoderReranker, PassageReranker, Query, Reranker, RerankError

#: Words of each candidate the LLM reads: enough to judge, short enough for 20 candidates in 4k tokens.
LLM_PASSAGE_WORDS = 120
#: Candidates the LLM orders (the rest keep their order after them).
LLM_CANDIDATES = 20
_NUMBER = re.compile(r"\d+")


def make_reranker(settings: Settings, name: Reranking | str | None = None) -> Reranker | None:
    """The reranker ``name`` (default: ``[retrieval] rerank``); None for ``none``. Unknown names are user errors."""
    try:
        chosen = Reranking(str(name).strip().lower()) if name is not None else settings.retrieval.rerank
    except ValueError:
        raise LectureRagError(f"Reordenador '{name}' desconhecido: use um de {', '.join(RERANKERS)}.") from None
    if chosen is Reranking.NONE:
        return None
    if chosen is Reranking.PASSAGES:
        return PassageReranker()
    if chosen is Reranking.CROSS_ENCODER:
        return CrossEncoderReranker(settings.retrieval.cross_encoder_model)
    return LLMReranker(_llm_or_error(settings.llm))


def _llm_or_error(settings: LLMSettings) -> LLM:
    llm = make_llm(settings)
    if llm is None:
        raise LectureRagError(
            "--rerank llm precisa de um LLM: defina LECTURE_RAG_LLM_BACKEND=openai (com LECTURE_RAG_LLM_BASE_URL "
            "e LECTURE_RAG_LLM_MODEL) ou gguf:/caminho/modelo.gguf."
        )
    return llm


class LLMReranker:
    """Listwise reranking by an LLM (see module docstring)."""

    def __init__(self, llm: LLM, *, candidates: int = LLM_CANDIDATES, max_tokens: int = 96) -> None:
        self.llm = llm
        self.candidates = candidates
        self.max_tokens = max_tokens

    @property
    def name(self) -> str:
        return f"llm:{self.llm.name}"

    def scores(self, query: Query, hits: Sequence[Hit]) -> list[float]:
        shown = list(hits[: self.candidates])
        lines = [f"[{i}] {' '.join(h.text.split()[:LLM_PASSAGE_WORDS])}" for i, h in enumerate(shown, start=1)]
        prompt = (
            f"Pergunta: {query.text}\n\nTrechos de aulas:\n" + "\n".join(lines) + "\n\nOrdene os trechos do mais "
            "ao menos útil para responder à pergunta. Responda só com os números entre colchetes, "
            "separados por ' > ', por exemplo: [2] > [1] > [3]"
        )
        completion = self.llm.complete(
            [
                {"role": "system", "content": "Você ordena trechos de aulas por relevância para uma pergunta."},
                {"role": "user", "content": prompt},
            ],
            max_tokens=self.max_tokens,
        )
        order = parse_ranking(completion.text, len(shown))
        if not order:
            raise RerankError(f"resposta sem números de trechos: {completion.text[:80]!r}")
        rank_of = {i: r for r, i in enumerate(order)}
        n = len(hits)
        # Named candidates first, in the LLM's order; the others after, in the first-stage order.
        return [float(2 * n - rank_of[i]) if i in rank_of else float(n - i) for i in range(n)]


def parse_ranking(text: str, count: int) -> list[int]:
    """0-based candidate indexes in the order the text names them (each once; out-of-range numbers ignored)."""
    seen: list[int] = []
    for match in _NUMBER.finditer(text):
        i = int(match.group()) - 1
        if 0 <= i < count and i not in seen:
            seen.append(i)
    return seen
