"""Shared fixtures: the shared data folder (must exist; tests fail, never skip) and CLI runner."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO.parent / "shared" / "data").resolve()
NURC = SHARED_DATA / "nurc-sp"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def shared(*parts: str) -> Path:
    """Path inside ../shared/data; a missing file is a test failure, not a skip."""
    path = SHARED_DATA.joinpath(*parts)
    assert path.exists(), f"test data missing: {path} (../shared/data must be beside the repo)"
    return path


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


def run_cli(
    *args: str, store: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``lecture-rag`` command as a user would."""
    full_env = dict(os.environ)
    full_env.pop("LECTURE_RAG_HOME", None)
    if store is not None:
        full_env["LECTURE_RAG_HOME"] = str(store)
    full_env["COLUMNS"] = "200"
    full_env.update(env or {})
    exe = Path(sys.executable).parent / "lecture-rag"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=full_env, timeout=timeout, check=False)


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
    from llm_server import llama_server as serve

    with serve(threads=1) as base_url:
        yield base_url


def kill_when(proc: subprocess.Popen[bytes], db: Path, count_sql: str, at_least: int, timeout: float) -> None:
    """SIGKILL ``proc`` as soon as ``count_sql`` on the SQLite file ``db`` reaches ``at_least``.

    Polls until then (or until ``timeout``), tolerating a database or table that
    does not exist yet; used to interrupt a real CLI run mid-work.
    """
    deadline = time.time() + timeout
    while time.time() < deadline:
        if db.exists():
            try:
                with sqlite3.connect(db) as conn:
                    if conn.execute(count_sql).fetchone()[0] >= at_least:
                        break
            except sqlite3.OperationalError:
                pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
