"""Shared fixtures: stores built once per session and a real llama.cpp server (helpers live in ``tests.support``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.paths import shared
from tests.support.servers import llama_server as serve


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture(scope="session")
def nurc_indexed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four NURC lectures (human transcripts), ingested and indexed once per test session."""
    store = tmp_path_factory.mktemp("nurc-indexed") / "store"
    result = run_cli("ingest", str(shared("nurc-sp", "transcripts")), store=store)
    assert result.returncode == 0, result.stderr + result.stdout
    return store


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """A real OpenAI-compatible server (llama_cpp.server + the bundled SmolLM2 GGUF) for the session."""
    with serve(threads=1) as base_url:
        yield base_url
