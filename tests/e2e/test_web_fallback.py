"""The ask page beside a flagged LLM answer: the extractive answer is offered, in a real browser.

The LLM is a real HTTP server that answers without citing anything (``ScriptedServer``):
what a small or misconfigured model does. The page must keep the LLM's answer, say why it
is flagged, and show the extractive quotes with playable citations.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import Watch, ask_in_page
from tests.support.servers import Reply, ScriptedServer
from tests.support.web import Q_CAVES, WebServer, start_web, web_server

UNCITED = ("As pinturas ", "eram feitas ", "nas cavernas.")


@pytest.fixture(scope="module")
def flagged_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    """A second ``serve`` over the session's web store, with an LLM that never cites."""
    shared = web_server(tmp_path_factory)
    with ScriptedServer([Reply(deltas=UNCITED)]) as llm:
        env = {
            "LECTURE_RAG_LLM_BACKEND": "openai",
            "LECTURE_RAG_LLM_BASE_URL": llm.base_url,
            "LECTURE_RAG_LLM_MODEL": "scripted-model",
            "LECTURE_RAG_LLM_CONTEXT_WINDOW": "8192",
        }
        log = tmp_path_factory.mktemp("fallback") / "server.log"
        server = start_web(shared.store, log, env)
        yield server
        server.stop()


def test_an_uncited_llm_answer_is_kept_and_the_extractive_one_offered(
    flagged_server: WebServer, page: tuple[Page, Watch]
) -> None:
    pg, watch = page
    pg.goto(flagged_server.base_url + "/")
    ask_in_page(pg, Q_CAVES)
    expect(pg.locator("#answer")).to_have_text("".join(UNCITED))
    expect(pg.locator("#fallback")).to_be_visible()
    expect(pg.locator("#fallback-why")).to_contain_text("não citou")
    fallback = pg.locator("#fallback-answer")
    expect(fallback).to_contain_text("Resposta extrativa")
    cite = fallback.locator(".cite").first
    expect(cite).to_be_visible()
    cite.click()
    expect(pg.locator("#player-frame, #player-video, #player-none").first).to_be_visible()
    assert watch.dialogs == [] and watch.csp == []
