"""A course's own recording, played by ``serve`` at the cited second; one second per citation (issue 21).

The store holds one lecture ingested from a local ``.mp4`` (Portuguese speech by espeak-ng, a
video track by ffmpeg, heard by the bundled Whisper) and no ``--url``. ``serve`` must play it
itself (``/media/<id>``, HTTP Range), the lecture page must open at the cited line and play
from any line, and every surface of a citation must say the same second. Real components
throughout: the CLI, the server, Chromium.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Response, expect

from lecture_rag.links import hhmmss
from lecture_rag.records import Answer
from lecture_rag.report.markdown import record_from_answer, render_record
from lecture_rag.wire import from_data
from tests.support.browser import VIEWPORT, Watch
from tests.support.cli import run_cli
from tests.support.servers import ServeProcess
from tests.support.speech import synthesise
from tests.support.web import TOKEN, parse_events, start_web

VIDEO_ID = "historia-colonial"
SENTENCES = [
    "Bom dia, hoje vamos falar sobre a história do Brasil colonial.",
    "Os portugueses chegaram ao litoral da Bahia no ano de mil e quinhentos.",
    "A cana de açúcar foi o principal produto exportado pela colônia.",
    "Os engenhos de açúcar usavam o trabalho escravo de africanos.",
    "No século dezoito o ouro de Minas Gerais mudou a economia da colônia.",
    "A capital foi transferida de Salvador para o Rio de Janeiro.",
]
QUESTION = "Qual era o principal produto exportado pela colônia?"
PHONE = {"width": 390, "height": 844}


def _mp4(wav: Path, out: Path) -> Path:
    """The speech with a small H.264 picture, as a course's recording would be."""
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "ffmpeg ausente: apt-get install -y ffmpeg"
    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-y", "-f", "lavfi", "-i", "color=c=navy:s=160x90:r=10", "-i", str(wav),
         "-shortest", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart", str(out)],
        check=True,
        timeout=120,
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("media")
    folder = root / "gravacoes"
    folder.mkdir()
    spoken = synthesise(SENTENCES, root / "fala.wav", gap=1.2, speed=140)
    _mp4(spoken.path, folder / "aula.mp4")
    store = root / "store"
    done = run_cli(
        "ingest", str(folder / "aula.mp4"), "--video-id", VIDEO_ID, "--title", "História do Brasil colonial",
        store=store, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    served = start_web(store, root / "server.log")
    yield served
    served.stop()


def _ask(server: ServeProcess) -> dict[str, Any]:
    response = httpx.post(server.base_url + "/api/ask", json={"question": QUESTION, "k": 3}, timeout=300)
    assert response.status_code == 200, response.text
    events = dict(parse_events(response.text))
    assert "done" in events, events
    answer: dict[str, Any] = events["done"]
    return answer


def test_a_local_recording_without_url_is_served_with_range_and_only_when_ingested(server: ServeProcess) -> None:
    video = {v["video_id"]: v for v in httpx.get(server.base_url + "/api/videos").json()}[VIDEO_ID]
    media = f"{server.base_url}/media/{VIDEO_ID}"
    assert video["player"] == {"kind": "media", "src": media, "youtube_id": None}
    assert "media_path" not in video and "source_path" not in video  # a server path is nobody's business
    whole = httpx.get(media)
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    assert whole.headers["accept-ranges"] == "bytes"
    part = httpx.get(media, headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206 and len(part.content) == 1000 and part.content == whole.content[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{len(whole.content)}"
    assert httpx.head(media).status_code == 200
    for probe in ("nao-ingerida", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "aula.mp4", "gravacoes%2Faula.mp4"):
        refused = httpx.get(f"{server.base_url}/media/{probe}")
        assert refused.status_code == 404, (probe, refused.status_code)
        assert b"root:" not in refused.content
    assert httpx.get(server.base_url + "/media/etc/passwd").status_code == 404


def test_a_citation_has_one_second_everywhere(server: ServeProcess) -> None:
    answer = _ask(server)
    assert answer["extractive"] and answer["citations"], answer["answer"]
    context = answer["context"]
    quoted = {int(n): t for t, n in re.findall(r"^- (\d\d:\d\d:\d\d) «.*?» \[(\d+)\]$", answer["answer"], re.M)}
    assert quoted, answer["answer"]
    assert len(quoted) == len(re.findall(r"\[\d+\]", answer["answer"]))  # each [n] is quoted once
    record = render_record(record_from_answer(from_data(Answer, answer), 1))
    for ref in answer["references"]:
        for cited in ref["times"]:
            n, second = cited["n"], cited["start"]
            hit = context[n - 1]
            assert hit["cite_start"] == second  # [n] and the hit's ▶ play this second
            assert quoted[n] == cited["inicio"] == hhmmss(second)  # the quote line and the reference button
            assert cited["url"] == f"{server.base_url}/media/{VIDEO_ID}#t={int(second)}"
            assert hit["cite_url"] == cited["url"]
            assert f"[{hhmmss(second)}]({cited['url']})" in record  # the markdown record's link


def _wait_at(pg: Page, player: str, second: int) -> None:
    """The page's video has loaded the file and stands within 2 s of ``second``."""
    pg.wait_for_function(
        "([id, s]) => { const v = document.getElementById(id);"
        " return !!v && v.readyState >= 1 && Math.abs(v.currentTime - s) <= 2; }",
        arg=[player, second],
        timeout=30_000,
    )


def _no_sideways_scroll(pg: Page) -> None:
    wide = pg.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert wide[0] <= wide[1], f"a página rola de lado: {wide} em {pg.url}"


def _open(browser: Browser, viewport: dict[str, int], phone: bool) -> tuple[Page, Watch, list[tuple[str, int]]]:
    context = browser.new_context(viewport=viewport, locale="pt-BR", has_touch=phone, is_mobile=phone)  # type: ignore[arg-type]
    pg = context.new_page()
    watch = Watch()
    pg.on("dialog", watch.on_dialog)
    pg.on("console", watch.on_console)
    media: list[tuple[str, int]] = []

    def seen(response: Response) -> None:
        if "/media/" in response.url:
            media.append((response.request.headers.get("range", ""), response.status))

    pg.on("response", seen)
    return pg, watch, media


@pytest.mark.parametrize("phone", [False, True], ids=["1280", "390-touch"])
def test_the_lecture_page_opens_at_the_cited_line_and_plays_the_local_file_there(
    server: ServeProcess, browser: Browser, phone: bool
) -> None:
    second = int(_ask(server)["references"][0]["times"][0]["start"])
    pg, watch, media = _open(browser, PHONE if phone else VIEWPORT, phone)
    try:
        pg.goto(f"{server.base_url}/aulas")
        _no_sideways_scroll(pg)
        pg.get_by_role("link", name="História do Brasil colonial").click()
        expect(pg).to_have_url(re.compile(f"/aulas/{VIDEO_ID}$"))
        pg.goto(f"{server.base_url}/aulas/{VIDEO_ID}?t={second}")
        cited = pg.locator("#transcript .line.cited")
        expect(cited).to_have_count(1)
        expect(cited).to_have_attribute("data-start", str(second))
        expect(cited).to_be_in_viewport()
        _no_sideways_scroll(pg)
        target = pg.locator("#transcript .line").last
        start = int(target.get_attribute("data-start") or "0")
        button = target.locator("button.at")
        button.tap() if phone else button.click()
        _wait_at(pg, "lecture-video", start)
        expect(target).to_have_class(re.compile("cited"))
        expect(pg.locator("#lecture-video")).to_be_in_viewport()
        # Search inside the lecture: every line holding the word, by time; a result plays from its line.
        pg.fill("#lecture-query", "colônia")
        results = pg.locator("#lecture-hits li")
        expect(results.first).to_be_visible()
        times = [int(x) for x in pg.locator("#transcript .line").evaluate_all(
            "(ls) => ls.filter((l) => l.textContent.toLowerCase().normalize('NFD')"
            ".replace(/[\\u0300-\\u036f]/g, '').includes('colonia')).map((l) => l.dataset.start)")]  # fmt: skip
        assert results.count() == len(times) >= 1
        _no_sideways_scroll(pg)
    finally:
        pg.context.close()
    watch.check()
    assert any(status == 206 for _, status in media), media  # the browser seeks with Range, the server answers 206


@pytest.mark.parametrize("phone", [False, True], ids=["1280", "390-touch"])
def test_the_ask_page_plays_the_local_recording_at_the_cited_second(
    server: ServeProcess, browser: Browser, phone: bool
) -> None:
    """Clicking (or, on a phone, tapping) ``[1]`` shows the player and plays the local file at the cited second."""
    pg, watch, _ = _open(browser, PHONE if phone else VIEWPORT, phone)
    try:
        pg.goto(server.base_url + "/")
        pg.fill("#question", QUESTION)
        pg.evaluate("document.body.dataset.state = ''")
        pg.get_by_role("button", name="Perguntar").click()
        expect(pg.locator("body")).to_have_attribute("data-state", "done", timeout=120_000)
        cite = pg.locator("#answer .cite").first
        n = int(cite.get_attribute("data-n") or "0")
        hours, minutes, seconds = (
            pg.locator(f"#references .ref-time[data-n='{n}']").first.inner_text().split()[-1].split(":")
        )
        second = 3600 * int(hours) + 60 * int(minutes) + int(seconds)
        assert hhmmss(second) in (cite.get_attribute("title") or "")  # the hover says the cited second
        cite.scroll_into_view_if_needed()
        cite.tap() if phone else cite.click()
        _wait_at(pg, "player-video", second)
        assert f"/media/{VIDEO_ID}" in (pg.locator("#player-video").get_attribute("src") or "")
        expect(pg.locator("#player-video")).to_be_in_viewport()  # on a phone: brought up from below the answer
        pg.wait_for_function("() => !document.getElementById('player-video').paused", timeout=10_000)  # playing
        _no_sideways_scroll(pg)
    finally:
        pg.context.close()
    watch.check()


def test_the_lecture_page_names_its_player_and_no_server_path(server: ServeProcess) -> None:
    """The lecture page's data name the player; the token never appears, a stored path never does."""
    page = httpx.get(f"{server.base_url}/aulas/{VIDEO_ID}")
    assert page.status_code == 200
    assert f'data-player-src="{server.base_url}/media/{VIDEO_ID}"' in page.text
    assert 'data-player-kind="media"' in page.text
    assert TOKEN not in page.text and "gravacoes" not in page.text
    assert httpx.get(f"{server.base_url}/aulas/nao-existe").status_code == 404
