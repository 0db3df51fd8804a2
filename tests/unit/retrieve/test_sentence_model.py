"""The extractive answer's sentence model on the NURC lectures: its shipped weights and what it ranks first."""

from __future__ import annotations

import fnmatch
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from lecture_rag.config import load_settings
from lecture_rag.embed import make_embedder
from lecture_rag.errors import LectureRagError
from lecture_rag.evaluate.questions import load_questions
from lecture_rag.evaluate.retrieval import judge_hits
from lecture_rag.generate.extractive import candidates
from lecture_rag.retrieve import Retriever, SearchRequest
from lecture_rag.retrieve.sentence_model import FEATURES, MODEL_PATH, SentenceModel, span_features
from lecture_rag.store import Store
from tests.support.paths import QUESTIONS

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def retriever(nurc_indexed: Path) -> Retriever:
    settings = load_settings(nurc_indexed)
    return Retriever.open(Store(nurc_indexed, create=False), make_embedder(settings.embedder), settings)


def test_the_shipped_model_loads_and_says_what_it_was_fitted_on() -> None:
    model = SentenceModel.load()
    assert model.features == FEATURES and len(model.coef) == len(FEATURES)
    assert np.isfinite(model.coef).all() and "NURC" in model.about and "bench_heldout" in model.about


def test_the_wheel_declares_the_model_file() -> None:
    """CI installs the wheel: a model file left out of package-data is an extractive answer that cannot load."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = config["tool"]["setuptools"]["package-data"]["lecture_rag"]
    path = MODEL_PATH.relative_to(ROOT / "src" / "lecture_rag").as_posix()
    assert any(fnmatch.fnmatch(path, g) for g in globs), path


def test_a_damaged_model_file_is_a_user_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "frases.json"
    data = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    data["features"] = ["semantic"]
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(LectureRagError, match=r"frases\.json.*bench_heldout"):
        SentenceModel.load(bad)


def test_a_sentence_that_answers_outranks_the_ones_that_do_not(retriever: Retriever) -> None:
    """In real NURC windows, spans said where the answer is said score above the window's other spans.

    Over the first questions whose answering window is retrieved: the best-scored span of that window
    lies in the evidence seconds more often than not, and an answering span beats the average other one.
    """
    model = SentenceModel.load()
    led, margins = [], []
    for q in load_questions(QUESTIONS)[:16]:
        if not q.answerable:
            continue
        found = retriever.search(SearchRequest(q.question, k=5))
        first = judge_hits(q, list(found.hits)).first_rank
        if first is None:
            continue
        spans = candidates(found.hits, found.signals)
        window = [i for i, c in enumerate(spans) if c.number == first]
        scores = model.score(span_features(found.query, found.hits, spans))[window]
        cands = [spans[i] for i in window]
        inside = np.asarray(
            [any(e.video_id == c.video_id and c.start < e.end and c.end > e.start for e in q.evidence) for c in cands]
        )
        if inside.all() or not inside.any():
            continue
        led.append(bool(inside[int(np.argmax(scores))]))
        margins.append(float(scores[inside].max() - scores[~inside].mean()))
    assert len(led) >= 6
    assert sum(led) > len(led) / 2, led
    assert np.mean(margins) > 0 and sum(m > 0 for m in margins) > len(margins) * 0.75, margins
