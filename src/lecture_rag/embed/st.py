"""Full-precision embedders through sentence-transformers, for users with a model hub or a local copy."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lecture_rag.embed.base import PASSAGE_PREFIX, QUERY_PREFIX, l2_normalise, looks_like_e5
from lecture_rag.errors import LectureRagError


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
