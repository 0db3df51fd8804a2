"""Local OpenAI-compatible runners on their usual ports: found by asking ``/v1/models``, used only on request.

A user who already runs Ollama or a llama.cpp server should not have to
learn our variables to be told so: ``lecture-rag llm check`` lists what it
finds. Using one is the user's choice (``LECTURE_RAG_LLM_BACKEND=auto``),
never silent: a server on a port may belong to someone else, or hold a model
the user would not want answering.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

#: (runner, port) in the order ``auto`` prefers them.
USUAL_PORTS: tuple[tuple[str, int], ...] = (
    ("Ollama", 11434),
    ("llama.cpp server", 8080),
    ("LM Studio", 1234),
    ("vLLM", 8000),
)
#: A local server answers /v1/models in milliseconds; a port that takes longer is not worth waiting for.
PROBE_TIMEOUT_S = 0.5


@dataclass(frozen=True, slots=True)
class Runner:
    """An OpenAI-compatible server found on this machine, and the models it lists."""

    name: str
    base_url: str
    models: tuple[str, ...]


def detect_runners(
    ports: Sequence[tuple[str, int]] = USUAL_PORTS, *, host: str = "127.0.0.1", timeout: float = PROBE_TIMEOUT_S
) -> list[Runner]:
    """The runners that answer ``GET /v1/models`` with a model list, in the order of ``ports`` (probed at once)."""
    with ThreadPoolExecutor(max_workers=max(1, len(ports))) as pool:
        found = pool.map(lambda item: _probe(item[0], f"http://{host}:{item[1]}/v1", timeout), ports)
        return [runner for runner in found if runner is not None]


def _probe(name: str, base_url: str, timeout: float) -> Runner | None:
    try:
        response = httpx.get(f"{base_url}/models", timeout=timeout)
        data = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return None
    models = tuple(str(item["id"]) for item in items if isinstance(item, dict) and item.get("id"))
    return Runner(name, base_url, models)
