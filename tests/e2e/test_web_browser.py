"""The pages in a real browser (Debian's Chromium driven by Playwright) against the live server.

The store and server are the session's shared ones (``tests.support.web``).
There is no internet here: the YouTube frame cannot load, so the tests check
the player's ``src`` (and ``currentSrc`` for HTML5 video), which is what the
page controls. The page's Content-Security-Policy stays on throughout, so a
page that needed inline script or eval would fail here too.

Run with ``pytest -s`` to see the timings measured in the browser. Screenshots go to a temporary
folder; ``LECTURE_RAG_UPDATE_SCREENSHOTS=1`` writes them over the committed ones in docs/screenshots.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from lecture_rag.links import hhmmss
from tests.support.browser import VIEWPORT, Watch, ask_in_page, log_in
from tests.support.paths import REPO
from tests.support.web import (
    IMG_CAPTION,
    MEDIA_URL,
    Q_CAVES,
    Q_INDUSTRY,
    Q_PHOTO,
    RUN,
    SCRIPT_CAPTION,
    XSS_TITLE,
    YOUTUBE_ID,
    WebServer,
    auth,
    parse_events,
    start_web,
    stored_annotations,
    verdicts,
    web_server,
)

DOC_SCREENSHOTS = REPO / "docs" / "screenshots"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    srv = web_server(tmp_path_factory)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the pages' screenshots go: a temporary folder, or docs/screenshots when asked to update them."""
    if os.environ.get("LECTURE_RAG_UPDATE_SCREENSHOTS") == "1":
        DOC_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return DOC_SCREENSHOTS
    return tmp_path_factory.mktemp("screenshots")


def load_ms(pg: Page) -> float:
    """Navigation timing: from navigation start to the end of the load event."""
    return float(pg.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd"))


def api_answer(server: WebServer, question: str) -> dict[str, Any]:
    """The same question through the API: the answer the page must have shown."""
    body = httpx.post(f"{server.base_url}/api/ask", json={"question": question}, timeout=60).text
    name, done = parse_events(body)[-1]
    assert name == "done"
    return dict(done)


def test_ask_streams_the_answer_and_citations_play_youtube_at_the_second(
    server: WebServer, page: tuple[Page, Watch], tmp_path: Path
) -> None:
    pg, _ = page
    log_in(pg, server)
    loaded = load_ms(pg)
    assert "token" not in pg.url, "o token deve sair da barra de endereço"
    assert pg.evaluate("sessionStorage.getItem('lecture-rag.token')") == server.token
    pg.fill("#question", Q_PHOTO)
    started = time.perf_counter()
    pg.get_by_role("button", name="Perguntar").click()
    expect(pg.locator("#answer")).not_to_be_empty(timeout=60_000)
    first_seen = time.perf_counter() - started
    expect(pg.locator("body")).to_have_attribute("data-state", "done", timeout=60_000)
    t = pg.evaluate("window.lectureRagTimings")
    print(
        f"\n[ask] carga da página {loaded:.0f} ms; clique→segmentos {t['hits'] - t['submit']:.0f} ms; "
        f"clique→1º token {t['firstToken'] - t['submit']:.0f} ms (visto pelo teste: {first_seen * 1000:.0f} ms); "
        f"clique→fim {t['done'] - t['submit']:.0f} ms"
    )

    expected = api_answer(server, Q_PHOTO)
    expect(pg.locator("#answer")).to_have_text(expected["answer"])
    expect(pg.locator("#extractive-badge")).to_be_visible()
    hits = pg.locator("#hits > li")
    expect(hits).to_have_count(len(expected["hits"]))
    first = expected["hits"][0]
    expect(hits.first).to_contain_text(f"{first['inicio']}–{first['fim']}")
    expect(hits.first.locator("button.play")).to_have_text(f"▶ {hhmmss(first['cite_start'])}")
    expect(hits.first).to_contain_text(f"Score {first['score']:.4f}")

    n = expected["citations"][-1]
    pg.locator(f"#answer .cite[data-n='{n}']").first.click()
    second = int(expected["context"][n - 1]["cite_start"])  # the player opens at the cited sentence
    assert second > 0
    expect(pg.locator("#player-frame")).to_have_attribute(
        "src", f"https://www.youtube.com/embed/{YOUTUBE_ID}?start={second}&autoplay=1"
    )
    ref = expected["references"][0]["times"][0]
    pg.locator(f"#references button.ref-time[data-n='{ref['n']}']").click()
    expect(pg.locator("#player-frame")).to_have_attribute(
        "src", f"https://www.youtube.com/embed/{YOUTUBE_ID}?start={int(ref['start'])}&autoplay=1"
    )
    pg.locator("#answer .cite").first.click()
    # The test store's lectures carry hostile test strings: this screenshot stays with the test's files
    # (docs show the real lectures, taken by scripts/screenshots.py).
    pg.screenshot(path=str(tmp_path / "ask.png"))


def test_transcript_markup_renders_as_text(server: WebServer, page: tuple[Page, Watch]) -> None:
    pg, watch = page
    pg.goto(server.base_url + "/")
    ask_in_page(pg, Q_PHOTO)
    first_hit = pg.locator("#hits > li").first.locator(".hit-text")
    expect(first_hit).to_contain_text(SCRIPT_CAPTION)
    expect(first_hit).to_contain_text(IMG_CAPTION)
    assert pg.locator("#result script, #result img").count() == 0
    pg.wait_for_timeout(300)  # an injected handler would have fired by now
    assert watch.dialogs == []


def test_media_segment_plays_in_html5_video_at_its_second(server: WebServer, page: tuple[Page, Watch]) -> None:
    pg, _ = page
    pg.goto(server.base_url + "/")
    ask_in_page(pg, Q_INDUSTRY)
    expected = api_answer(server, Q_INDUSTRY)
    media = [i for i, h in enumerate(expected["hits"]) if h["video_id"] == "hist-revolucao"]
    index = media[-1]
    second = int(expected["hits"][index]["cite_start"])
    pg.locator("#hits > li").nth(index).locator("button.play").click()
    video = pg.locator("#player-video")
    expect(video).to_have_attribute("src", f"{MEDIA_URL}#t={second}")
    # currentSrc is what the media element chose to load; it is set by the (asynchronous) resource selection.
    pg.wait_for_function("() => document.getElementById('player-video').currentSrc !== ''")
    assert pg.evaluate("document.getElementById('player-video').currentSrc") == f"{MEDIA_URL}#t={second}"
    title = pg.locator("#hits > li").nth(index).locator(".title")
    expect(title).to_have_text(XSS_TITLE)
    expect(pg.locator("#references")).to_contain_text(XSS_TITLE)


def test_video_without_url_shows_the_time_and_says_there_is_no_link(
    server: WebServer, page: tuple[Page, Watch]
) -> None:
    pg, _ = page
    pg.goto(server.base_url + "/")
    ask_in_page(pg, Q_CAVES)
    expected = api_answer(server, Q_CAVES)
    index = next(i for i, h in enumerate(expected["hits"]) if h["video_id"] == "SP_EF_405")
    pg.locator("#hits > li").nth(index).locator("button.play").click()
    message = pg.locator("#player-none")
    expect(message).to_contain_text("não tem link")
    expect(message).to_contain_text(hhmmss(expected["hits"][index]["cite_start"]))  # the cited sentence's second
    assert pg.locator("#player iframe, #player video").count() == 0


def test_annotate_three_records_by_keyboard_and_resume(
    server: WebServer, page: tuple[Page, Watch], tmp_path: Path
) -> None:
    pg, _ = page
    annotator = "ana-teclado"
    log_in(pg, server)
    pg.goto(f"{server.base_url}/runs/{RUN}/annotate")
    pg.fill("#annotator-input", annotator)
    pg.get_by_role("button", name="Começar").click()
    expect(pg.locator("body")).to_have_attribute("data-ready", "1")
    print(f"\n[anotar] carga da página {load_ms(pg):.0f} ms")
    expect(pg.locator("#progress-text")).to_have_text("0/5 anotadas por você")
    expect(pg.locator("#record-question")).to_have_text(Q_PHOTO)
    expect(pg.locator("#auto-label")).to_have_text("Oculta até você escolher um rótulo.")
    expect(pg.locator("#hits")).to_contain_text(SCRIPT_CAPTION)
    expected = verdicts(server.store)
    expect(pg.locator("#ar-score")).to_have_text(f"{expected['web-foto'].ar:.2f}")

    qids = ["web-foto", "nurc-048", "nurc-049"]
    autos = [expected[q].label for q in qids]
    for number, (key, qid, auto) in enumerate(zip("cpi", qids, autos, strict=True), start=1):
        expect(pg.locator("#record")).to_have_attribute("data-qid", qid)
        if number == 2:
            pg.locator("#comment").press("c")  # typing in the comment must not label
            expect(pg.locator("#comment")).to_have_value("c")
            expect(pg.locator("#progress-text")).to_have_text("1/5 anotadas por você")
            pg.fill("#comment", "faltou o número exato")
            pg.locator("h1").click()  # leave the text box; keys label again
        pg.keyboard.press(key)
        expect(pg.locator("#saved")).to_have_text(
            f"Pergunta {number} gravada como {key.upper()} (anotação automatizada: {auto})."
        )
        expect(pg.locator("#progress-text")).to_have_text(f"{number}/5 anotadas por você")
    pg.set_viewport_size({"width": 1280, "height": 1700})  # the whole record, label bar at the bottom
    # a test run's record (test strings): never the docs' picture, which scripts/screenshots.py takes
    pg.screenshot(path=str(tmp_path / "annotate.png"))
    pg.set_viewport_size(VIEWPORT)

    assert stored_annotations(server.store, annotator) == {"web-foto": "C", "nurc-048": "P", "nurc-049": "I"}
    records = httpx.get(f"{server.base_url}/api/runs/{RUN}/records", params={"annotator": annotator}).json()
    by_qid = {r["qid"]: r for r in records["records"]}
    assert by_qid["nurc-048"]["annotations"][annotator]["comment"] == "faltou o número exato"

    pg.reload()  # resumes at the first record this annotator has not labelled
    expect(pg.locator("body")).to_have_attribute("data-ready", "1")
    expect(pg.locator("#record")).to_have_attribute("data-qid", "nurc-050")
    expect(pg.locator("#auto-label")).to_have_text("Oculta até você escolher um rótulo.")
    pg.keyboard.press("ArrowLeft")
    expect(pg.locator("#record")).to_have_attribute("data-qid", "nurc-049")
    expect(pg.locator("#auto-label")).to_have_text(f"{expected['nurc-049'].label} · seu rótulo: I")
    expect(pg.locator(".label-button.chosen")).to_have_attribute("data-label", "I")


def test_annotation_page_without_token_asks_for_it(server: WebServer, page: tuple[Page, Watch]) -> None:
    pg, _ = page
    pg.goto(f"{server.base_url}/runs/{RUN}/annotate")
    expect(pg.locator("#need-token")).to_be_visible()
    expect(pg.locator("#need-name")).to_be_visible()
    pg.fill("#annotator-input", "bia")
    pg.fill("#token-input", "token-errado")
    pg.get_by_role("button", name="Começar").click()
    expect(pg.locator("body")).to_have_attribute("data-ready", "1")
    pg.keyboard.press("n")
    expect(pg.locator("#load-error")).to_contain_text("Token ausente ou inválido")
    expect(pg.locator("#need-token")).to_be_visible()
    assert stored_annotations(server.store, "bia") == {}


@pytest.mark.parametrize("width", [390, 1280])
def test_annotation_reads_question_answer_reference_then_collapsed_evidence(
    server: WebServer, page: tuple[Page, Watch], width: int
) -> None:
    """The person judges the answer: it comes right after the question, then the question file's
    reference answer, and the retrieved segments only when asked for (issue 25, item 3)."""
    pg, _ = page
    pg.set_viewport_size({"width": width, "height": 900})
    log_in(pg, server)
    pg.goto(f"{server.base_url}/runs/{RUN}/annotate")
    pg.fill("#annotator-input", f"ordem-{width}")
    pg.get_by_role("button", name="Começar").click()
    expect(pg.locator("body")).to_have_attribute("data-ready", "1")
    expect(pg.locator("#record")).to_have_attribute("data-qid", "web-foto")
    expect(pg.locator("#reference-answer")).to_have_text("Pela luz, na clorofila.")
    parts = ["#record-question", "#answer", "#reference-answer", "#evidence"]
    boxes = []
    for selector in parts:
        expect(pg.locator(selector)).to_be_visible()
        box = pg.locator(selector).bounding_box()
        assert box is not None and box["x"] + box["width"] <= width + 1, (selector, box)  # nothing off the screen
        boxes.append(box["y"])
    assert boxes == sorted(boxes) and len(set(boxes)) == len(parts), dict(zip(parts, boxes, strict=True))
    evidence = pg.locator("#evidence")
    assert evidence.evaluate("(e) => e.tagName === 'DETAILS' && !e.open")
    expect(pg.locator("#hits")).to_be_hidden()
    expect(evidence.locator(":scope > summary")).to_contain_text("Segmentos recuperados")
    evidence.locator(":scope > summary").click()
    expect(pg.locator("#hits > li").first).to_be_visible()
    expect(pg.locator("#hits")).to_contain_text(SCRIPT_CAPTION)


def test_agreement_page_shows_numbers_and_plots(server: WebServer, page: tuple[Page, Watch], screenshots: Path) -> None:
    pg, _ = page
    for qid, label in {"web-foto": "C", "nurc-048": "P", "nurc-049": "C", "nurc-050": "P", "nurc-051": "P"}.items():
        saved = httpx.post(
            f"{server.base_url}/api/runs/{RUN}/annotations",
            headers=auth(),
            json={"qid": qid, "label": label, "annotator": "revisora"},
        )
        assert saved.status_code == 200, saved.text
    summary = httpx.get(f"{server.base_url}/api/runs/{RUN}/agreement").json()
    agreement = summary["agreement"]
    pg.goto(server.base_url + "/runs")
    pg.get_by_role("link", name="concordância").first.click()
    expect(pg).to_have_url(re.compile(rf"/runs/{RUN}/agreement$"))
    print(f"\n[concordância] carga da página {load_ms(pg):.0f} ms")
    expect(pg.locator("#accuracy")).to_have_text(f"{100 * agreement['accuracy']:.1f}%")
    kappa = "n/d" if agreement["kappa"] is None else f"{agreement['kappa']:.3f}"
    expect(pg.locator("#kappa")).to_contain_text(kappa)
    cells = pg.locator("#confusion tbody td")
    assert [int(c) for c in cells.all_inner_texts()] == [v for row in agreement["confusion"] for v in row]
    plots = pg.locator("img.plot")
    expect(plots).to_have_count(2)
    for i in range(2):
        assert pg.evaluate("(i) => document.querySelectorAll('img.plot')[i].naturalWidth", i) > 100
    if summary["inter_annotator"]:
        expect(pg.get_by_role("heading", name="Entre anotadores")).to_be_visible()
    pg.screenshot(path=str(screenshots / "agreement.png"), full_page=True)


def test_the_login_link_works_once_and_no_usable_secret_stays_in_the_address_bar_or_history(
    server: WebServer, browser: Browser, tmp_path: Path
) -> None:
    """A server that needs a login to read runs (as one shared on a network does), in a real browser."""
    protected = start_web(server.store, tmp_path / "protegido.log", env={"LECTURE_RAG_WEB__READ_NEEDS_TOKEN": "true"})
    try:
        found = re.search(r"http://\S+/login\?code=\S+", protected.log.read_text(encoding="utf-8"))
        assert found is not None
        link = found.group(0)
        context = browser.new_context(viewport=VIEWPORT, locale="pt-BR")
        pg = context.new_page()
        urls: list[str] = []
        pg.on("request", lambda request: urls.append(request.url))
        pg.goto(f"{protected.base_url}/runs")  # no session yet: the login page, not the runs
        expect(pg).to_have_url(re.compile(r"/login\?next=/runs$"))
        expect(pg.locator("#login-form")).to_be_visible()
        assert RUN not in pg.content()

        pg.goto(link)  # the printed link, as a click in the terminal opens it
        expect(pg).to_have_url(f"{protected.base_url}/")
        expect(pg.locator("body")).to_have_attribute("data-token-ready", "1")
        assert pg.evaluate("sessionStorage.getItem('lecture-rag.token')") == protected.token
        assert pg.evaluate("document.cookie") == ""  # the session cookie is HttpOnly
        (cookie,) = context.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        pg.goto(f"{protected.base_url}/runs")
        expect(pg.get_by_role("cell", name=RUN)).to_be_visible()
        pg.get_by_role("link", name="anotar").first.click()
        pg.fill("#annotator-input", "leitora")
        pg.get_by_role("button", name="Começar").click()
        expect(pg.locator("body")).to_have_attribute("data-ready", "1")
        expect(pg.locator("#record-question")).to_have_text(Q_PHOTO)

        # What the browser keeps: every address it went to, and the tab's history, back to the start.
        history = [pg.url]
        while pg.go_back() is not None:
            history.append(pg.url)
        for url in [*urls, *history]:
            assert protected.token not in url and "token=" not in url, url
        code = link.split("code=", 1)[1]
        assert not any(code in url for url in history), history
        context.close()

        # The link itself (typed again, or found in the history of the browser that used it) is dead.
        other = browser.new_context(viewport=VIEWPORT, locale="pt-BR")
        again = other.new_page()
        response = again.goto(link)
        assert response is not None and response.status == 401
        expect(again.locator("#login-error")).to_contain_text("já foi usado")
        assert other.cookies() == []
        assert again.evaluate("fetch('/api/runs').then((r) => r.status)") == 401
        other.close()
    finally:
        protected.stop()
