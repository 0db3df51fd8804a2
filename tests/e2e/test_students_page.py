"""The student's page (issue 21) in a real Chromium, on a phone (390×844, touch) and a desktop (1280×1000).

The store and ``serve`` process are the session's shared web ones (``tests.support.web``); the LLM
trouble tests start a second ``serve`` over the same store whose LLM is a real HTTP server that
lists its models but never answers a question (``ScriptedServer`` with a long delay), and a third
whose LLM endpoint accepts connections and never answers anything (``dead_endpoint("silent")``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import Watch, ask_in_page, log_in, low_contrast
from tests.support.servers import Reply, ScriptedServer, dead_endpoint
from tests.support.web import Q_CAVES, Q_INDUSTRY, Q_PHOTO, RUN, WebServer, start_web, web_server

#: A lecture of the shared store (the NURC one, ingested without a URL).
LECTURE = "SP_EF_405"

PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True}
DESKTOP = {"viewport": {"width": 1280, "height": 1000}}
SCREENS = {"phone": PHONE, "desktop": DESKTOP}
#: How long the hanging LLM's requests may wait before the engine gives up (LECTURE_RAG_LLM_TIMEOUT).
LLM_TIMEOUT_S = 6
#: The dead endpoint's generation timeout (never reached) and connect timeout (what bounds the wait).
DEAD_LLM_TIMEOUT_S = 300
DEAD_CONNECT_TIMEOUT_S = 2


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    srv = web_server(tmp_path_factory)
    yield srv
    srv.stop()  # the shared process; stopping twice (other modules) is harmless


@pytest.fixture(scope="module")
def hanging_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    """A second ``serve`` over the shared store whose LLM accepts every request and never answers."""
    shared = web_server(tmp_path_factory)
    with ScriptedServer([Reply(delay_s=120)]) as llm:
        env = {
            "LECTURE_RAG_LLM_BACKEND": "openai",
            "LECTURE_RAG_LLM_BASE_URL": llm.base_url,
            "LECTURE_RAG_LLM_MODEL": "scripted-model",
            "LECTURE_RAG_LLM_CONTEXT_WINDOW": "8192",
            "LECTURE_RAG_LLM_TIMEOUT": str(LLM_TIMEOUT_S),
            "LECTURE_RAG_LLM_RETRIES": "0",
        }
        server = start_web(shared.store, tmp_path_factory.mktemp("hanging") / "server.log", env)
        yield server
        server.stop()


@pytest.fixture(scope="module")
def dead_llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    """A ``serve`` over the shared store whose LLM endpoint accepts connections and never answers HTTP."""
    shared = web_server(tmp_path_factory)
    with dead_endpoint("silent") as url:
        env = {
            "LECTURE_RAG_LLM_BACKEND": "openai",
            "LECTURE_RAG_LLM_BASE_URL": url,
            "LECTURE_RAG_LLM_MODEL": "scripted-model",
            "LECTURE_RAG_LLM_TIMEOUT": str(DEAD_LLM_TIMEOUT_S),
            "LECTURE_RAG_LLM_CONNECT_TIMEOUT": str(DEAD_CONNECT_TIMEOUT_S),
        }
        server = start_web(shared.store, tmp_path_factory.mktemp("dead-llm") / "server.log", env)
        yield server
        server.stop()


@contextmanager
def screen(browser: Browser, kind: str) -> Iterator[Page]:
    """A fresh page on a phone or a desktop, watched for dialogs and CSP violations."""
    context = browser.new_context(locale="pt-BR", **SCREENS[kind])  # type: ignore[arg-type]
    page = context.new_page()
    watch = Watch()
    page.on("dialog", watch.on_dialog)
    page.on("console", watch.on_console)
    try:
        yield page
    finally:
        context.close()
    watch.check()


def in_viewport(pg: Page, selector: str) -> bool:
    box = pg.evaluate(
        "(s) => { const r = document.querySelector(s).getBoundingClientRect();"
        " return {top: r.top, bottom: r.bottom, h: window.innerHeight}; }",
        selector,
    )
    return bool(box["top"] >= -1 and box["top"] < box["h"] and box["bottom"] > 0)


def sideways(pg: Page) -> int:
    """How many pixels the page is wider than the viewport (0: no sideways scrolling)."""
    return int(pg.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


@pytest.mark.parametrize("kind", ["phone", "desktop"])
def test_a_citation_brings_the_player_into_view(server: WebServer, browser: Browser, kind: str) -> None:
    with screen(browser, kind) as pg:
        pg.goto(server.base_url + "/")
        ask_in_page(pg, Q_INDUSTRY)
        cite = pg.locator("#answer .cite").first
        cite.scroll_into_view_if_needed()
        if kind == "phone":
            cite.tap()
        else:
            cite.click()
        expect(pg.locator("#player-video, #player-frame, #player-none").first).to_be_attached()
        pg.wait_for_function(
            "() => { const r = document.getElementById('player').getBoundingClientRect();"
            " return r.top >= -1 && r.top < window.innerHeight && r.bottom > 0; }",
            timeout=5_000,
        )
        assert in_viewport(pg, "#player")
        second = int(pg.locator("#player").get_attribute("data-second") or -1)
        assert second >= 0


@pytest.mark.parametrize("kind", ["phone", "desktop"])
def test_no_page_scrolls_sideways(server: WebServer, browser: Browser, kind: str) -> None:
    with screen(browser, kind) as pg:
        pg.goto(server.base_url + "/")
        ask_in_page(pg, Q_PHOTO)
        assert sideways(pg) <= 0, "/ com resposta"
        for path in ("/aulas", f"/aulas/{LECTURE}", "/runs", "/login"):
            pg.goto(server.base_url + path)
            assert sideways(pg) <= 0, path
        log_in(pg, server)
        pg.goto(f"{server.base_url}/runs/{RUN}/agreement")
        assert sideways(pg) <= 0, "concordância"
        pg.goto(f"{server.base_url}/runs/{RUN}/annotate")
        pg.fill("#annotator-input", "Ana")
        pg.get_by_role("button", name="Começar").click()
        expect(pg.locator("#record-question")).not_to_be_empty()
        assert sideways(pg) <= 0, "anotação"
        bar = pg.locator("section.labels").bounding_box()
        assert bar is not None
        if kind == "phone":
            assert bar["height"] <= 0.25 * 844, f"a barra de rótulos ocupa {bar['height']} px"
            assert not pg.locator("section.labels kbd").first.is_visible(), "dica de tecla num telefone"
            for button in pg.locator(".label-button").all():
                size = button.bounding_box()
                assert size is not None and size["height"] >= 44
        else:
            expect(pg.locator("section.labels kbd").first).to_be_visible()
        header = pg.locator("header.top nav").bounding_box()
        assert header is not None and header["height"] < 60, "o menu quebrou em várias linhas"


def test_hit_cards_read_like_a_student_needs(server: WebServer, browser: Browser) -> None:
    with screen(browser, "phone") as pg:
        pg.goto(server.base_url + "/")
        ask_in_page(pg, Q_CAVES)
        first = pg.locator("#hits > li").first
        head = first.locator(".hit-head > *")
        expect(head.first).to_have_class(re.compile(r"\btitle\b"))
        expect(first.locator("mark.cited")).to_have_count(1)
        text = first.locator(".hit-text")
        assert text.evaluate("(e) => e.scrollHeight > e.clientHeight + 2"), "o trecho não está recortado"
        first.get_by_role("button", name="mostrar mais").click()
        assert text.evaluate("(e) => e.scrollHeight <= e.clientHeight + 2")
        expect(first.get_by_role("button", name="mostrar menos")).to_be_visible()
        expect(first.get_by_text("Corpus ID")).to_be_hidden()
        first.locator("summary", has_text="detalhes").click()
        expect(first.get_by_text("Corpus ID")).to_be_visible()
        details = pg.locator("#hits > li details").evaluate_all("(els) => els.map((e) => e.textContent)")
        ranks = [int(m.group(1)) for t in details if (m := re.search(r"posição (\d+)", t))]
        assert ranks == sorted(ranks) and len(ranks) == len(details), details
        # BM25 has no cosine: no "Score -" / "Score n/d" anywhere
        pg.select_option("#mode", "bm25")
        ask_in_page(pg, Q_CAVES)
        assert "Score -" not in pg.locator("#hits").inner_text()
        assert "Score n/d" not in pg.locator("#hits").text_content()


def test_the_question_lives_in_the_address_with_a_filter_and_recent_questions(
    server: WebServer, browser: Browser
) -> None:
    with screen(browser, "desktop") as pg:
        pg.goto(f"{server.base_url}/?q={quote(Q_PHOTO)}")
        expect(pg.locator("body")).to_have_attribute("data-state", "done", timeout=60_000)
        expect(pg.locator("#question")).to_have_value(Q_PHOTO)
        expect(pg.locator("#hits > li").first).to_be_visible()
        # the filter: only one lecture's hits
        expect(pg.locator("#video option")).to_have_count(4)
        pg.select_option("#video", "hist-revolucao")
        ask_in_page(pg, Q_CAVES)
        assert "q=" in pg.url
        ids = pg.locator("#hits > li").evaluate_all("(els) => els.map((e) => e.textContent)")
        assert ids and all("Revolução Industrial" in t for t in ids)
        # this browser's recent questions, clearable
        pg.goto(server.base_url + "/")
        recent = pg.locator("#recent-list li")
        expect(recent).to_have_count(2)
        expect(recent.first).to_have_text(Q_CAVES)
        pg.get_by_role("button", name="limpar").click()
        expect(pg.locator("#recent")).to_be_hidden()


def test_the_small_things(server: WebServer, browser: Browser) -> None:
    assert httpx.head(server.base_url + "/", timeout=30).status_code == 200
    with screen(browser, "desktop") as pg:
        pg.goto(server.base_url + "/")
        expect(pg.locator("#result")).to_be_hidden()  # no empty skeleton before a question
        ask_in_page(pg, Q_INDUSTRY)
        pg.locator("#hits button.play").first.click()
        expect(pg.locator("#player-video, #player-frame, #player-none")).to_have_count(1)
        ask_in_page(pg, Q_PHOTO)
        expect(pg.locator("#player-video, #player-frame, #player-none")).to_have_count(0)  # not the last lecture
        pg.goto(server.base_url + "/runs")
        created = pg.locator("table time").first.inner_text()
        assert not re.search(r"\d{4}-\d\d-\d\dT", created), created
        assert re.fullmatch(r"\d{1,2} (jan|fev|mar|abr|mai|jun|jul|ago|set|out|nov|dez) \d{4}, \d\d:\d\d", created)
        log_in(pg, server)
        expect(pg.locator("header.top")).to_contain_text("conectado")
        pg.get_by_role("button", name="sair").click()
        expect(pg.locator("header.top")).not_to_contain_text("conectado")
        pg.goto(server.base_url + "/api/session")
        assert "Sem sessão" in pg.content()


@pytest.mark.parametrize("kind", ["phone", "desktop"])
def test_keyboard_and_labels(server: WebServer, browser: Browser, kind: str) -> None:
    with screen(browser, kind) as pg:
        for path in ("/", "/aulas", f"/aulas/{LECTURE}", "/runs", "/login"):
            pg.goto(server.base_url + path)
            assert low_contrast(pg) == [], f"{path}: contraste abaixo de WCAG AA"
            unnamed = pg.evaluate(
                "() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]"
                ".filter((e) => !e.closest('[hidden]') && !(e.labels && e.labels.length)"
                " && !e.getAttribute('aria-label') && !e.textContent.trim()).map((e) => e.id || e.outerHTML)"
            )
            assert unnamed == [], f"{path}: sem nome acessível: {unnamed}"
        pg.goto(server.base_url + "/")
        ask_in_page(pg, Q_INDUSTRY)
        cite = pg.locator("#answer .cite").first
        assert cite.evaluate("(e) => e.tagName") == "BUTTON"
        cite.focus()
        pg.keyboard.press("Shift+Tab")
        pg.keyboard.press("Tab")  # reached by the keyboard: the focus ring must show
        assert cite.evaluate("(e) => e === document.activeElement")
        outline = cite.evaluate("(e) => getComputedStyle(e).outlineStyle")
        pg.keyboard.press("Enter")
        expect(pg.locator("#player-video, #player-frame, #player-none")).to_have_count(1)
        play = pg.locator("#hits button.play").first
        play.focus()
        pg.keyboard.press(" ")
        expect(pg.locator("#player .player-caption")).to_be_visible()
        assert outline != "none"


def test_a_hanging_llm_shows_time_and_cancel_then_the_truthful_fallback(
    hanging_server: WebServer, browser: Browser
) -> None:
    with screen(browser, "phone") as pg:
        pg.goto(hanging_server.base_url + "/")
        # it lists its models: reachable, until a question shows it never answers one
        expect(pg.locator("#llm-health")).to_have_text("LLM: disponível", timeout=10_000)
        pg.fill("#question", Q_CAVES)
        pg.get_by_role("button", name="Perguntar").click()
        expect(pg.locator("#cancel-button")).to_be_visible()
        expect(pg.locator("#elapsed")).to_have_text(re.compile(r"^[2-9] s$"), timeout=10_000)
        pg.get_by_role("button", name="Cancelar").click()
        expect(pg.locator("body")).to_have_attribute("data-state", "done", timeout=5_000)
        expect(pg.locator("#status")).to_have_text("Pergunta cancelada.")
        expect(pg.locator("#cancel-button")).to_be_hidden()

        started = time.monotonic()
        ask_in_page(pg, Q_CAVES)
        assert time.monotonic() - started < LLM_TIMEOUT_S * 4
        problem = pg.locator("#answer-error")
        expect(problem).to_contain_text("não respondeu")
        assert "LECTURE_RAG" not in pg.locator("main").inner_text()
        expect(pg.locator("#fallback-answer")).to_contain_text("o LLM não respondeu; trechos das aulas")
        assert "nenhum LLM configurado" not in pg.locator("main").inner_text()
        pg.reload()
        expect(pg.locator("#llm-health")).to_have_text("LLM: indisponível")
    assert "o LLM falhou" in hanging_server.log.read_text(errors="replace")


def test_the_header_tells_a_dead_llm_before_any_question(
    dead_llm_server: WebServer, server: WebServer, browser: Browser
) -> None:
    """The badge is a live probe: "indisponível" on the first page load; a question then gives up in seconds."""
    with screen(browser, "phone") as pg:
        started = time.monotonic()
        pg.goto(dead_llm_server.base_url + "/aulas")
        assert time.monotonic() - started < DEAD_CONNECT_TIMEOUT_S * 5, "a page waited for the dead LLM"
        badge = pg.locator("#llm-health")
        expect(badge).to_have_text("LLM: indisponível", timeout=DEAD_CONNECT_TIMEOUT_S * 5_000)
        assert "LECTURE_RAG" not in (badge.get_attribute("title") or "") + badge.inner_text()
        pg.goto(dead_llm_server.base_url + "/")
        started = time.monotonic()
        ask_in_page(pg, Q_CAVES)
        assert time.monotonic() - started < DEAD_LLM_TIMEOUT_S / 5, "the question waited for the generation timeout"
        expect(pg.locator("#answer-error")).to_contain_text("não respondeu")
        expect(pg.locator("#fallback-answer")).to_contain_text("o LLM não respondeu; trechos das aulas")
        expect(badge).to_have_text("LLM: indisponível")
        # no LLM configured: the shared server says so, in the student's words
        pg.goto(server.base_url + "/")
        expect(pg.locator("#llm-health")).to_have_text("LLM: não configurado")
