"""Shared fixtures: stores built once per session, a real llama.cpp server, a real browser (helpers: ``tests.support``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, Watch, watched_page
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
