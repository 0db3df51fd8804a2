"""The ``learned`` reranker on the NURC lectures (human transcripts): its features, its model file, its order."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from lecture_rag.config import load_settings
from lecture_rag.embed import make_embedder
from lecture_rag.errors import LectureRagError
from lecture_rag.evaluate.questions import load_questions
from lecture_rag.evaluate.retrieval import judge_hits
from lecture_rag.index.bm25 import BM25Index
from lecture_rag.index.build import Indexes
from lecture_rag.index.passages import passage_id, split_passages
from lecture_rag.records import Hit, Segment
from lecture_rag.retrieve import Retriever
from lecture_rag.retrieve.learned import (
    FEATURES,
    MODEL_PATH,
    NEIGHBOUR_GAP,
    LearnedModel,
    LearnedReranker,
    coverage,
    features,
)
from lecture_rag.retrieve.rerank import Query, make_reranker
from lecture_rag.retrieve.search import Candidate, passage_places, suppress_near_duplicates
from lecture_rag.store import Store
from tests.support.paths import QUESTIONS, shared
from tests.support.retrieval import search_hits


@pytest.fixture(scope="module")
def retriever(nurc_indexed: Path) -> Retriever:
    settings = load_settings(nurc_indexed)
    return Retriever.open(Store(nurc_indexed, create=False), make_embedder(settings.embedder), settings)


def _query(retriever: Retriever, text: str) -> Query:
    return Query(text, retriever.embedder.embed_queries([text])[0], retriever.index.current())


def _nurc_sentences(lecture: str, count: int) -> list[str]:
    """The first ``count`` transcript sentences of a NURC lecture (the human CSV's ``text`` column)."""
    lines = shared("nurc-sp", "transcripts", f"sentences_{lecture}.csv").read_text(encoding="utf-8").splitlines()
    return [row.split(";")[3] for row in lines[1 : count + 1]]


def test_rare_word_coverage_folds_accents_and_inflection() -> None:
    """A student typing without accents (or in the singular) covers the same words as the lecture's spelling.

    The index stems accented words: ``paleolítico`` and ``paleolitico`` stem apart unless folded first.
    """
    texts = _nurc_sentences("SP_EF_405", 40) + _nurc_sentences("SP_EF_153", 40)
    bm25 = BM25Index.build(range(len(texts)), texts, fingerprint="test")
    hits = [Hit(i, "v", 0.0, 1.0, t) for i, t in enumerate(texts)]
    indexes = Indexes(vectors=None, bm25=bm25)  # type: ignore[arg-type]  # coverage reads only BM25
    with_accents = coverage(Query("as pinturas das cavernas do paleolítico", np.zeros(1), indexes), hits)
    without = coverage(Query("pintura da caverna do paleolitico", np.zeros(1), indexes), hits)
    assert with_accents.max() > 0.3
    np.testing.assert_allclose(with_accents, without)


def test_features_are_one_finite_row_per_hit_relative_to_the_question(retriever: Retriever) -> None:
    q = "Por que os homens do paleolítico não se fixavam num lugar?"
    hits = search_hits(retriever, q, k=20, mode="dense", reranker=None)
    x = features(_query(retriever, q), hits)
    assert x.shape == (len(hits), len(FEATURES))
    assert np.isfinite(x).all()
    assert x[:, FEATURES.index("cosine_gap")].max() == pytest.approx(0.0)
    assert x[:, FEATURES.index("bm25")].max() == pytest.approx(1.0)
    assert x[0, FEATURES.index("inverse_rank")] == 1.0


def test_a_window_carries_the_best_bm25_of_the_windows_beside_it(retriever: Retriever) -> None:
    """An answer said across a window boundary: the question's words sit in the window before or after.

    Each candidate gets the best (question-relative) BM25 of the candidates of its video that touch it,
    0 when none does; the shipped model gives that signal a positive weight.
    """
    q = "Por que os homens do paleolítico não se fixavam num lugar?"
    hits = search_hits(retriever, q, k=50, mode="dense", reranker=None)
    x = features(_query(retriever, q), hits)
    bm25, near = x[:, FEATURES.index("bm25")], x[:, FEATURES.index("neighbour_bm25")]
    touching = [
        [
            j
            for j, b in enumerate(hits)
            if b.video_id == a.video_id
            and j != i
            and (abs(b.start - a.end) <= NEIGHBOUR_GAP or abs(a.start - b.end) <= NEIGHBOUR_GAP)
        ]
        for i, a in enumerate(hits)
    ]
    assert any(touching) and not all(touching)
    for i, beside in enumerate(touching):
        assert near[i] == pytest.approx(max((bm25[j] for j in beside), default=0.0))
    model = LearnedModel.load()
    assert model.coef[FEATURES.index("neighbour_bm25")] > 0


def test_the_shipped_model_loads_and_says_what_it_was_fitted_on() -> None:
    model = LearnedModel.load()
    assert model.features == FEATURES and len(model.coef) == len(FEATURES)
    for data_set in ("NURC", "FaQuAD", "SQuAD-pt"):
        assert data_set in model.about
    assert make_reranker(load_settings(None), "learned").name == "learned"


def test_a_damaged_model_file_is_a_user_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "modelo.json"
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(LectureRagError, match=r"modelo\.json"):
        LearnedModel.load(bad)
    data = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    data["features"] = ["cosine"]
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(LectureRagError, match="bench_heldout --fit"):
        LearnedModel.load(bad)


def test_only_the_first_stage_top_depth_is_reordered(retriever: Retriever) -> None:
    """Below the model's depth the first-stage order stays: hit@depth can never be lost to reranking.

    The first stage here is the plain cosine list (no places kept for the best passages' windows).
    """
    plain = _without_passage_pool(retriever)
    reranker = LearnedReranker()
    depth = reranker.model.depth
    for q in load_questions(QUESTIONS)[:12]:
        first = search_hits(plain, q.question, k=50, mode="dense", reranker=None)
        again = search_hits(plain, q.question, k=50, mode="dense", reranker=reranker)
        assert {h.corpus_id for h in again[:depth]} == {h.corpus_id for h in first[:depth]}
        assert [h.corpus_id for h in again[depth:]] == [h.corpus_id for h in first[depth:]]
        assert judge_hits(q, again[:depth]).hit(depth) == judge_hits(q, first[:depth]).hit(depth)


def _retrieval_settings(retriever: Retriever, **changes: int) -> Retriever:
    settings = retriever.settings.model_copy(
        update={"retrieval": retriever.settings.retrieval.model_copy(update=changes)}
    )
    return Retriever.open(retriever.store, retriever.embedder, settings)


def _without_passage_pool(retriever: Retriever) -> Retriever:
    return _retrieval_settings(retriever, passage_pool=0)


def _best_passage_by_pieces(query: Query, window: Hit) -> float:
    """A window's best passage cosine, its passages found by cutting its pieces as the build does
    (the search reads them from the passage index's ids instead)."""
    passages = query.indexes.passages
    assert passages is not None
    ids = [passage_id(window.corpus_id, j) for j in range(len(split_passages(window, passages.seconds)))]
    return float(passages.vectors.cosines(np.asarray(ids, dtype=np.int64), query.vector).max())


def test_the_windows_of_the_best_passages_join_the_rerankers_candidates(retriever: Retriever) -> None:
    """A 25-second answer inside a 2-minute window can leave the window far down the cosine list while its
    passage is among the best: ``passage_pool`` places of the reranker's candidates go to the windows with the
    best passages of the first stage's fetch, the rest to the cosine list's top, in its order."""
    size = retriever.settings.retrieval.passage_pool
    assert size == 10
    plain = _without_passage_pool(retriever)
    twenty = _retrieval_settings(retriever, rerank_candidates=20)
    reranker = LearnedReranker()
    joined = 0
    for q in load_questions(QUESTIONS)[:12]:
        query = _query(retriever, q.question)
        fetch = search_hits(plain, q.question, k=150, mode="dense", reranker=None)
        cands = [Candidate(h.corpus_id, h.score or 0.0, h.score) for h in fetch]
        segments: dict[int, Segment] = {h.corpus_id: h for h in fetch}
        places = passage_places(query, cands, segments, 50, size)
        kept = suppress_near_duplicates(cands, segments, retriever.dedup_policy, 50, reserved=places)
        ids = [c.corpus_id for c in kept]
        assert len(ids) == 50 and ids == sorted(ids, key=[h.corpus_id for h in fetch].index)  # cosine order kept
        best = {h.corpus_id: _best_passage_by_pieces(query, h) for h in fetch}
        wanted = sorted(best, key=lambda i: -best[i])[:size]
        rest = [h.corpus_id for h in fetch if h.corpus_id not in wanted][: 50 - size]
        assert set(ids) == set(wanted) | set(rest)
        # Through a search (this store's 80 windows: 20 candidates, so that there is an outside to come from).
        reranked = search_hits(twenty, q.question, k=20, mode="dense", reranker=reranker)
        first = search_hits(plain, q.question, k=20, mode="dense", reranker=None)
        assert {h.corpus_id for h in first[: 20 - size]} <= {h.corpus_id for h in reranked}
        joined += len({h.corpus_id for h in reranked} - {h.corpus_id for h in first})
    assert joined > 0  # some question gets a window from outside the cosine list's top 20
    no_passages = replace(_query(retriever, "paleolítico"), indexes=replace(retriever.index.current(), passages=None))
    cands = [Candidate(i, 1.0 - i / 100) for i in range(80)]
    assert passage_places(no_passages, cands, {}, 50, size) == frozenset()
    fetch = search_hits(plain, "paleolítico", k=60, mode="dense", reranker=None)
    every = [Candidate(h.corpus_id, h.score or 0.0, h.score) for h in fetch]
    assert len(passage_places(_query(retriever, "paleolítico"), every, {h.corpus_id: h for h in fetch}, 20, 30)) == 20


def test_the_reranker_leaves_its_feature_pass_on_the_query_for_the_stages_after_it(retriever: Retriever) -> None:
    """One feature pass per search: what the abstention needs (cosines, BM25, coverage, best passage, the
    model's score) is kept per candidate, and it is exactly what a fresh pass over those hits computes."""
    q = "Por que os homens do paleolítico não se fixavam num lugar?"
    hits = search_hits(retriever, q, k=50, mode="dense", reranker=None)
    query = _query(retriever, q)
    reranker = LearnedReranker()
    scores = reranker.scores(query, hits)
    kept = query.candidates
    assert kept is not None and list(kept.ids) == [h.corpus_id for h in hits[: reranker.model.depth]]
    np.testing.assert_array_equal(kept.score, scores[: len(kept.ids)])
    np.testing.assert_allclose(kept.coverage, coverage(query, hits[: len(kept.ids)]))
    np.testing.assert_allclose(kept.cosine, features(query, hits)[:, FEATURES.index("cosine")])
    rows = kept.rows(hits[5:0:-1])
    assert rows is not None and list(rows) == [5, 4, 3, 2, 1]
    assert kept.rows([Hit(-1, "v", 0.0, 1.0, "fora")]) is None
