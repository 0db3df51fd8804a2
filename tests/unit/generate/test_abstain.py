"""The calibrated abstention (issue 22) on the NURC lectures (human transcripts) indexed once per session."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from lecture_rag.config import load_settings
from lecture_rag.embed import make_embedder
from lecture_rag.errors import LectureRagError
from lecture_rag.evaluate.questions import load_questions
from lecture_rag.generate import abstain
from lecture_rag.generate.abstain import MODEL_PATH, SIGNALS, AbstainModel, abstain_model, signals
from lecture_rag.generate.extractive import extract
from lecture_rag.retrieve import Retriever, SearchRequest, SearchResult, learned
from lecture_rag.retrieve.rerank import best_passage_scores, make_reranker
from lecture_rag.store import Store
from tests.support.paths import QUESTIONS

OFF_TOPIC = ("Qual é a capital da Austrália?", "Qual a receita tradicional da feijoada?", "Quem ganhou a Copa de 2002?")


@pytest.fixture(scope="module")
def retriever(nurc_indexed: Path) -> Retriever:
    settings = load_settings(nurc_indexed)
    store = Store(nurc_indexed, create=False)
    return Retriever.open(store, make_embedder(settings.embedder), settings, reranker=make_reranker(settings))


def test_signals_are_finite_and_in_their_ranges(retriever: Retriever) -> None:
    found = retriever.search(SearchRequest("Quantos termos para gelo existem na língua dos esquimós?"))
    x = signals(found)
    assert x.shape == (len(SIGNALS),) and np.isfinite(x).all()
    top_cosine, margin, coverage, agreement, passage, share, rank_margin, bm25_share = x
    assert 0.7 < top_cosine <= 1.0 and margin >= 0.0
    assert 0.0 <= coverage <= 1.0 and 0.0 < agreement <= 1.0 and 0.7 < passage <= 1.0
    assert 0.0 < share <= 1.0 and rank_margin >= 0.0
    # BM25 gives a term at most (k1 + 1) = 2.2 times its IDF: the share of the question's IDF is in (0, 2.2]
    assert 0.0 < bm25_share <= 2.2


def test_a_question_the_lectures_answer_is_likelier_answered_than_ones_they_do_not(retriever: Retriever) -> None:
    model = abstain_model()
    answered = model.probability(
        signals(retriever.search(SearchRequest("Quantos termos para gelo há na língua dos esquimós?")))
    )
    for question in ("Qual é a capital da Austrália?", "Qual a receita tradicional da feijoada?"):
        assert model.probability(signals(retriever.search(SearchRequest(question)))) < answered
    found = retriever.search(SearchRequest("Qual a receita tradicional da feijoada?"))
    decided = extract(found, retriever.embedder)
    assert decided.answer_probability is not None and decided.abstains
    assert not extract(found, retriever.embedder, calibrated=False).answer_probability


def test_the_shipped_model_says_what_it_was_fitted_on_and_a_damaged_one_is_named(tmp_path: Path) -> None:
    model = AbstainModel.load()
    assert model.signals == SIGNALS and 0.0 < model.threshold < 1.0
    assert all(name in model.about for name in ("NURC", "FaQuAD", "SQuAD-pt"))
    assert "course's own store" in model.about  # fitted where every hit comes from a few lectures too
    assert "articles taken as recordings" in model.about  # and where every distractor is a recording
    data = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    data["signals"] = ["top_cosine"]
    bad = tmp_path / "abst.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(LectureRagError, match="bench_heldout --fit"):
        AbstainModel.load(bad)


def _fresh(found: SearchResult) -> SearchResult:
    """The same result without the reranker's feature pass (the abstention then computes its own)."""
    return dataclasses.replace(found, query=dataclasses.replace(found.query, candidates=None))


def test_the_abstention_reads_the_rerankers_feature_pass_and_decides_as_a_fresh_pass_would(
    retriever: Retriever, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One shared feature pass: on ``ask`` the abstention reuses what the ``learned`` reranker computed for
    the same hits (no second passage scoring), and every signal and decision is the one a fresh pass gives."""
    model = abstain_model()
    questions = [q.question for q in load_questions(QUESTIONS)[:10]] + list(OFF_TOPIC)
    for question in questions:
        found = retriever.search(SearchRequest(question))
        assert found.query.candidates is not None  # the default reranker is ``learned``
        shared, fresh = signals(found), signals(_fresh(found))
        same = [SIGNALS.index(n) for n in SIGNALS if n != "rank_margin"]
        # float32 cosines of a different batch may differ in the last bit (~3e-8)
        np.testing.assert_allclose(shared[same], fresh[same], rtol=1e-6, atol=1e-6)
        hits = found.hits
        assert shared[SIGNALS.index("rank_margin")] == pytest.approx(hits[0].rerank_score - hits[1].rerank_score)
        fresh[SIGNALS.index("rank_margin")] = shared[SIGNALS.index("rank_margin")]
        assert (model.probability(shared) < model.threshold) == (model.probability(fresh) < model.threshold)
    calls: list[int] = []

    def counted(*args: object) -> tuple[np.ndarray, np.ndarray]:
        calls.append(1)
        return best_passage_scores(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(learned, "best_passage_scores", counted)
    monkeypatch.setattr(abstain, "best_passage_scores", counted, raising=False)
    found = retriever.search(SearchRequest(questions[0]))
    extract(found, retriever.embedder)
    assert len(calls) == 1


def test_the_shipped_model_answers_lecture_questions_and_abstains_on_off_topic_ones(retriever: Retriever) -> None:
    """Over the real NURC text: the model uses the search's lecture share and the reranker's margin, answers
    most questions the lectures answer, and abstains on questions about something else entirely."""
    model = AbstainModel.load()
    assert {"lecture_share", "rank_margin"} <= set(model.signals)
    answerable = [q.question for q in load_questions(QUESTIONS) if q.answerable][:12]
    answered = [not extract(retriever.search(SearchRequest(q)), retriever.embedder).abstains for q in answerable]
    assert sum(answered) >= 10
    for question in OFF_TOPIC:
        assert extract(retriever.search(SearchRequest(question)), retriever.embedder).abstains


def test_the_bm25_share_weighs_the_words_the_lectures_never_say(retriever: Retriever) -> None:
    """The BM25 signal is the highest BM25 among the hits over the question's whole IDF: a word no lecture says (here
    «Austrália») weighs as the rarest, so a question that shares one common word with a lecture («capital»)
    does not look answered; a question the lectures answer scores a larger share than either."""
    found = retriever.search(SearchRequest("Qual é a capital da Austrália?"))
    share = abstain.signal_values(found)["bm25_share"]
    best = float(abstain.hit_signals(found).bm25.max())
    assert 0.0 < share < abstain.bm25_share(retriever.search(SearchRequest("Qual é a capital?")), best)
    answered = retriever.search(SearchRequest("Antes de Descartes, quem fixou a noção de perspectiva?"))
    assert abstain.signal_values(answered)["bm25_share"] > share
