"""The calibrated abstention (issue 22) on the NURC lectures (human transcripts) indexed once per session."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lecture_rag.config import load_settings
from lecture_rag.embed import make_embedder
from lecture_rag.errors import LectureRagError
from lecture_rag.generate.abstain import MODEL_PATH, SIGNALS, AbstainModel, abstain_model, signals
from lecture_rag.generate.extractive import extract
from lecture_rag.retrieve import Retriever, SearchRequest
from lecture_rag.store import Store


@pytest.fixture(scope="module")
def retriever(nurc_indexed: Path) -> Retriever:
    settings = load_settings(nurc_indexed)
    return Retriever.open(Store(nurc_indexed, create=False), make_embedder(settings.embedder), settings)


def test_signals_are_finite_and_in_their_ranges(retriever: Retriever) -> None:
    found = retriever.search(SearchRequest("Quantos termos para gelo existem na língua dos esquimós?"))
    x = signals(found)
    assert x.shape == (len(SIGNALS),) and np.isfinite(x).all()
    top_cosine, margin, coverage, agreement, passage = x
    assert 0.7 < top_cosine <= 1.0 and margin >= 0.0
    assert 0.0 <= coverage <= 1.0 and 0.0 < agreement <= 1.0 and 0.7 < passage <= 1.0


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
    data = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    data["signals"] = ["top_cosine"]
    bad = tmp_path / "abst.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(LectureRagError, match="bench_heldout --fit"):
        AbstainModel.load(bad)
