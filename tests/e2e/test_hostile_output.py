"""Hostile strings through every output (issue 16): reports, web pages and the terminal.

One store is built through the real pipeline, as a user would: ``ingest`` of
SRT lectures whose captions, titles (sidecar ``NAME.json`` and ``videos.csv``),
video ids and URLs (``javascript:``, ``data:``, ``vbscript:``, ``file:``, an
``https`` URL made to break out of a markdown link) carry script tags, event
handlers, markdown link tricks and Rich markup; a label scheme whose names
carry the same; ``run --llm none --judge-llm none`` over a question file with
hostile questions (the run is then given a hostile name, as an older
version allowed: such runs stay readable); ``annotate import`` with a hostile
annotator and comment. Then:

* the HTML report is opened in Chromium with a dialog handler, and every link
  in it is clicked: no dialog, no script, every link ``http(s)``;
* the markdown report keeps no raw HTML tag, and rendered by a permissive
  markdown viewer and opened in Chromium, runs nothing and links only ``http(s)``;
* the CSV report neutralises formulas;
* the web app's ask, annotate, runs and agreement pages show the strings as
  text, and every player and reference button plays only ``http(s)`` sources;
* every CLI output shows the strings verbatim (Rich markup is not interpreted).

Browser tests use Debian's Chromium through Playwright, as ``test_web_browser.py``
does; the browser here is module-scoped (closed before that module starts its own).
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from markdown_it import MarkdownIt
from playwright.sync_api import Browser, Page, Route, expect

from lecture_rag.store import DB_NAME
from tests.support.browser import Watch, watched_page
from tests.support.cli import run_cli
from tests.support.transcripts import srt_text
from tests.support.web import WebServer, start_web

SCRIPT = "<script>alert('s')</script>"
IMG = "<img src=x onerror=alert('i')>"
ANCHOR = "<a href=\"javascript:alert('a')\">a</a>"
MDLINK = "[md](javascript:alert('m'))"
RICH = "[[x]] [bold]b[/bold]"
# In an SRT the reader strips tag-shaped markup and then decodes entities: entities are how markup
# reaches the stored text.
CUE_PAYLOAD = (
    "&lt;script&gt;alert('cue')&lt;/script&gt; &lt;img src=x onerror=alert('cueimg')&gt; "
    "[md](javascript:alert('cuemd')) [[x]] [bold]b[/bold]"
)
CUE_TEXT = "<script>alert('cue')</script> <img src=x onerror=alert('cueimg')> [md](javascript:alert('cuemd')) [[x]] [bold]b[/bold]"
PAREN_URL = "https://media.example.org/b)[x](javascript:alert('paren')"
YOUTUBE = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
TITLE_A = f"A {RICH} {SCRIPT} {MDLINK}"
RICH_NAME = "[[x]] [bold]b[red]"  # for names that become a path or a URL segment: no "/"
RUN = f"r{IMG} {RICH_NAME}"
QUESTION = f"Como a fotossíntese usa a clorofila? {SCRIPT} {MDLINK} {RICH}"
FORMULA_QUESTION = '=HYPERLINK("http://evil.example","x") fotossíntese e clorofila'
LABEL_NAME = "certa [[x]] [bold]b[/bold] <img src=x onerror=alert('label')>"
ANNOTATOR = f"{IMG} [[x]]"
TERMINAL_ANNOTATOR = "[[y]] [bold]c[/bold]"
WEB_ANNOTATOR = f"{SCRIPT} web"
BAD_FILE = f"{RICH_NAME} ruim.srt"

# file → (metadata, where it comes from, cue texts). Every lecture speaks of photosynthesis, so the
# questions retrieve a segment of each.
LECTURES: dict[str, tuple[dict[str, str], str]] = {
    "aula-a.srt": (
        {"video_id": "../<b>a</b>", "title": TITLE_A, "url": "javascript:alert('url')", "course": IMG},
        "sidecar",
    ),
    "aula-b.srt": ({"video_id": "b", "title": f"B {IMG} {ANCHOR}", "url": PAREN_URL}, "manifest"),
    "aula-c.srt": (
        {"video_id": "c", "title": f"C {SCRIPT}", "url": "data:text/html,<script>alert('d')</script>"},
        "manifest",
    ),
    "aula-d.srt": ({"video_id": "d", "title": f"D {MDLINK}", "url": "vbscript:msgbox('v')"}, "manifest"),
    "aula-e.srt": ({"video_id": "e", "title": f"E {RICH}", "url": "file:///etc/passwd"}, "manifest"),
    "aula-f.srt": ({"video_id": "f", "title": f"F {ANCHOR}", "url": YOUTUBE}, "manifest"),
}
# Distinct speech per lecture (near-duplicate segments are shown once), each with the payload.
# Lecture b (the hostile ")[x](javascript:" URL) speaks the sentence closest to QUESTION, so the answer,
# which quotes one lecture, quotes b and its links are the ones checked.
TOPICS = [
    "Na fase clara da fotossíntese a clorofila quebra a molécula de água e libera oxigênio.",
    "A fotossíntese acontece nos cloroplastos, onde a clorofila absorve a luz do sol.",
    "O ciclo de Calvin fixa o gás carbônico e produz glicose na fase escura da fotossíntese.",
    "As plantas são autótrofas: a fotossíntese fabrica glicose com luz, água e gás carbônico.",
    "A clorofila reflete o verde e absorve o azul e o vermelho durante a fotossíntese.",
    "A temperatura e a luz controlam a velocidade da fotossíntese nas folhas e na clorofila.",
]
LABELS_TOML = f"""
[[labels]]
code = "C"
name = {json.dumps(LABEL_NAME)}
description = "the ANSWER is right {SCRIPT}"
guide = {json.dumps(f"a resposta está certa {RICH} {IMG}")}

[[labels]]
code = "I"
name = "errada"
description = "the ANSWER is wrong"
"""


@dataclass
class Hostile:
    root: Path
    store: Path
    ingest_stdout: str
    ingest_stderr: str


def _write_lectures(root: Path) -> Path:
    src = root / "aulas"
    src.mkdir(parents=True)
    rows = ["file,video_id,title,course,url"]
    for i, (name, (meta, where)) in enumerate(LECTURES.items()):
        cues = [(10, 38, TOPICS[i]), (40, 68, f"{CUE_PAYLOAD} não são matéria desta aula.")]
        (src / name).write_text(srt_text(cues), encoding="utf-8")
        if where == "sidecar":
            (src / name).with_suffix(".json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        else:
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerow(
                [name, meta["video_id"], meta["title"], meta.get("course", ""), meta["url"]]
            )
            rows.append(buffer.getvalue().rstrip("\n"))
    (src / "videos.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (src / BAD_FILE).write_text("1\n00:00:99,000 --> xx\nquebrado\n", encoding="utf-8")
    return src


def _write_questions(root: Path) -> Path:
    lines = [
        {"id": f"q-{IMG}", "question": QUESTION, "type": RICH, "evidence": [{"video_id": "b", "start": 0, "end": 120}]},
        {
            "id": "q2",
            "question": FORMULA_QUESTION,
            "type": "[red]t[/red]",
            "evidence": [{"video_id": "c", "start": 0, "end": 120}],
        },
    ]
    path = root / "perguntas.jsonl"
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    return path


def _rename_run(store: Path, old: str, new: str) -> None:
    """Give a run a name only an older version accepted (any text): such runs stay readable, so names are data too."""
    with sqlite3.connect(store / DB_NAME) as conn:
        conn.execute("UPDATE runs SET name=? WHERE name=?", (new, old))
        for table in ("run_items", "judgments", "annotations"):
            conn.execute(f"UPDATE {table} SET run=? WHERE run=?", (new, old))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Hostile:
    root = tmp_path_factory.mktemp("hostil")
    store = root / "store"
    store.mkdir()
    (store / "config.toml").write_text(LABELS_TOML, encoding="utf-8")
    ingest = run_cli("ingest", str(_write_lectures(root)), store=store)
    assert ingest.returncode == 1, ingest.stderr + ingest.stdout  # the bad file, named and explained
    ran = run_cli(
        "run", str(_write_questions(root)), "--name", "hostil", "--llm", "none", "--judge-llm", "none", "--k", "6",
        store=store,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr + ran.stdout
    _rename_run(store, "hostil", RUN)
    labels = root / "rotulos.csv"
    with labels.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["qid", "label", "annotator", "comment"])
        writer.writerow([f"q-{IMG}", "C", ANNOTATOR, f"{SCRIPT} {RICH}"])
        writer.writerow([f"q-{IMG}", "I", "bia", ""])
        writer.writerow(["q2", "I", ANNOTATOR, MDLINK])
    imported = run_cli("annotate", "import", RUN, str(labels), store=store)
    assert imported.returncode == 0, imported.stderr + imported.stdout
    return Hostile(root, store, ingest.stdout, ingest.stderr)


# --- the browser ---------------------------------------------------------------------------------


OUTSIDE = re.compile(r"^https?://(?!127\.0\.0\.1[:/])")  # everything but the test's own server


def _stub_the_web(route: Route) -> None:
    """Links lead nowhere real (no internet here, and none is wanted): every http(s) request gets a blank page."""
    route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>fora</title>")


@pytest.fixture
def page(browser: Browser) -> Iterator[tuple[Page, Watch]]:
    with watched_page(browser, (OUTSIDE, _stub_the_web)) as watched:
        yield watched


DANGEROUS_DOM = """() => {
  const all = [...document.querySelectorAll('*')];
  return {
    scripts: document.querySelectorAll('script:not([src^="/static/"])').length,
    handlers: all.flatMap(e => [...e.attributes].filter(a => a.name.startsWith('on')).map(a => e.tagName + ' ' + a.name)),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    sources: [...document.querySelectorAll('[src]')].map(e => e.src),
  };
}"""


def _check_dom(pg: Page, *, allowed_prefixes: tuple[str, ...]) -> list[str]:
    """No script from the data, no event handler attribute, every link and source http(s) (or the page's own)."""
    dom = pg.evaluate(DANGEROUS_DOM)
    assert dom["scripts"] == 0 and dom["handlers"] == [], dom
    for url in [*dom["links"], *dom["sources"]]:
        assert url.startswith(allowed_prefixes), url
    return list(dom["links"])


def _click_every_link(pg: Page, url: str, watch: Watch) -> int:
    """Open ``url``, then click each of its links in turn (reopening the page each time)."""
    pg.goto(url)
    count = pg.locator("a[href]").count()
    for i in range(count):
        pg.goto(url)
        pg.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        pg.locator("a[href]").nth(i).click()
        pg.wait_for_timeout(50)
        watch.check()
    return count


# --- reports -------------------------------------------------------------------------------------


def test_html_report_runs_nothing_and_links_only_http(hostile: Hostile, page: tuple[Page, Watch]) -> None:
    pg, watch = page
    out = hostile.root / "pasta nova" / "sub" / "rodada.html"  # missing folders are created (item 2)
    made = run_cli("report", RUN, "--format", "html", "-o", str(out), store=hostile.store)
    assert made.returncode == 0, made.stderr + made.stdout
    assert f"Relatório gravado em {out}" in " ".join(made.stdout.split())
    pg.goto(out.as_uri())
    pg.wait_for_timeout(300)  # an injected handler would have fired by now
    watch.check()
    links = _check_dom(pg, allowed_prefixes=("https://",))
    assert any(link.startswith("https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=") for link in links), links
    assert any(link.startswith("https://media.example.org/b%29") for link in links), links
    pg.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    text = pg.locator("body").inner_text()
    for shown in (RUN, SCRIPT, TITLE_A, CUE_TEXT, f"B {IMG} {ANCHOR}"):
        assert shown in text, shown
    assert _click_every_link(pg, out.as_uri(), watch) == len(links) >= 4


def test_markdown_report_keeps_no_html_and_a_viewer_runs_nothing(hostile: Hostile, page: tuple[Page, Watch]) -> None:
    pg, watch = page
    made = run_cli("report", RUN, "--format", "markdown", store=hostile.store)
    assert made.returncode == 0, made.stderr
    markdown = made.stdout
    assert not re.search(r"<[A-Za-z/!?]", markdown), "HTML dos dados chegou cru ao markdown"
    assert "&lt;script>alert('cue')&lt;/script>" in markdown
    for scheme in ("javascript:", "data:", "vbscript:", "file:"):
        assert f"]({scheme}" not in markdown
    viewer = MarkdownIt("commonmark", {"html": True})
    viewer.validateLink = lambda url: True  # a viewer that does not filter link schemes
    rendered = hostile.root / "markdown.html"
    rendered.write_text(f"<!doctype html><meta charset=utf-8><body>{viewer.render(markdown)}", encoding="utf-8")
    pg.goto(rendered.as_uri())
    pg.wait_for_timeout(300)
    watch.check()
    links = _check_dom(pg, allowed_prefixes=("https://", rendered.as_uri()))
    text = pg.locator("body").inner_text()
    assert "<script>alert('s')</script>" in text and "[md](javascript:alert('m'))" in text
    # the answers quote one lecture each since issue 22, so only the hostile ")[x](javascript:" URL's two links
    # (reference and quote) are left to click; that is the one that must stay a plain https link
    assert any(link.startswith("https://media.example.org/b%29") for link in links)
    assert _click_every_link(pg, rendered.as_uri(), watch) == len(links) >= 2


def test_csv_report_neutralises_formulas(hostile: Hostile) -> None:
    made = run_cli("report", RUN, "--format", "csv", store=hostile.store)
    assert made.returncode == 0, made.stderr
    rows = list(csv.DictReader(io.StringIO(made.stdout)))
    assert [r["question"] for r in rows] == [QUESTION, "'" + FORMULA_QUESTION]
    for row in rows:
        for field, value in row.items():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), (field, value)
        for url in (meta["url"] for meta, _ in LECTURES.values() if meta["url"] != YOUTUBE):
            assert url not in row["references"], url  # a cited second instead (or the encoded https URL)


def test_report_output_folders(hostile: Hostile) -> None:
    """``-o`` into missing folders creates them; a folder as the output is a clear error, not a traceback."""
    target = hostile.root / "novos" / RICH_NAME / "r.md"
    made = run_cli("report", RUN, "-o", str(target), store=hostile.store)
    assert made.returncode == 0, made.stderr
    assert target.read_text(encoding="utf-8").startswith("**Pergunta 1**")
    assert f"Relatório gravado em {target}" in " ".join(made.stdout.split())
    refused = run_cli("report", RUN, "-o", str(hostile.root), store=hostile.store)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "é uma pasta" in refused.stderr


# --- the web app ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(hostile: Hostile) -> Iterator[WebServer]:
    srv = start_web(hostile.store, hostile.root / "server.log")
    yield srv
    srv.stop()


def _player_is_safe(pg: Page) -> None:
    frames = pg.locator("#player iframe")
    videos = pg.locator("#player video")
    if frames.count():
        assert (frames.first.get_attribute("src") or "").startswith("https://www.youtube.com/embed/dQw4w9WgXcQ?")
    elif videos.count():
        assert (videos.first.get_attribute("src") or "").startswith("https://media.example.org/b%29")
    else:
        expect(pg.locator("#player-none")).to_contain_text("não tem link")


def _play_everything(pg: Page, watch: Watch) -> int:
    """Click every play button, citation and reference on the page; each must play only http(s) or nothing."""
    buttons = pg.locator("#hits button.play, #answer .cite, #references button.ref-time")
    count = buttons.count()
    for i in range(count):
        buttons.nth(i).click()
        _player_is_safe(pg)
        watch.check()
    return count


def test_ask_page_shows_hostile_strings_as_text_and_plays_only_http(
    server: WebServer, page: tuple[Page, Watch]
) -> None:
    pg, watch = page
    pg.goto(f"{server.base_url}/")
    pg.fill("#question", QUESTION)
    pg.get_by_role("button", name="Perguntar").click()
    expect(pg.locator("body")).to_have_attribute("data-state", "done", timeout=60_000)
    expect(pg.locator("#hits")).to_contain_text(CUE_TEXT)
    expect(pg.locator("#hits")).to_contain_text(TITLE_A)
    expect(pg.locator("#references")).not_to_be_empty()
    pg.wait_for_timeout(300)
    watch.check()
    _check_dom(pg, allowed_prefixes=(server.base_url,))
    assert _play_everything(pg, watch) >= 6
    _check_dom(pg, allowed_prefixes=(server.base_url, "https://www.youtube.com/embed/", "https://media.example.org/"))


def test_annotate_runs_and_agreement_pages_show_hostile_strings_as_text(
    server: WebServer, page: tuple[Page, Watch]
) -> None:
    pg, watch = page
    pg.goto(f"{server.base_url}/runs")
    expect(pg.locator("body")).to_contain_text(RUN)
    _check_dom(pg, allowed_prefixes=(server.base_url,))
    pg.get_by_role("link", name="anotar").first.click()
    expect(pg).to_have_url(f"{server.base_url}/runs/{quote(RUN, safe='')}/annotate")
    pg.fill("#annotator-input", WEB_ANNOTATOR)
    pg.fill("#token-input", server.token)
    pg.get_by_role("button", name="Começar").click()
    expect(pg.locator("body")).to_have_attribute("data-ready", "1")
    expect(pg.locator("#record-question")).to_have_text(QUESTION)
    expect(pg.locator("#annotator-name")).to_have_text(WEB_ANNOTATOR)
    expect(pg.locator("#hits")).to_contain_text(CUE_TEXT)
    expect(pg.locator("body")).to_contain_text(LABEL_NAME)
    pg.wait_for_timeout(300)
    watch.check()
    pg.locator("details:has(#hits)").evaluate("d => { d.open = true; }")  # the evidence comes collapsed
    assert _play_everything(pg, watch) >= 6
    pg.keyboard.press("ArrowRight")
    expect(pg.locator("#record-question")).to_have_text(FORMULA_QUESTION)
    _check_dom(pg, allowed_prefixes=(server.base_url, "https://www.youtube.com/embed/", "https://media.example.org/"))
    pg.goto(f"{server.base_url}/runs/{quote(RUN, safe='')}/agreement")
    expect(pg.locator("body")).to_contain_text(RUN)
    pg.wait_for_timeout(300)
    watch.check()
    _check_dom(pg, allowed_prefixes=(server.base_url,))


# --- the terminal (Rich) -------------------------------------------------------------------------


def _flat(text: str) -> str:
    """Output with Rich's line wrapping and table borders folded away."""
    return " ".join(text.replace("│", " ").split())


def test_ingest_report_shows_file_names_and_reasons_verbatim(hostile: Hostile) -> None:
    assert f"Falhou: {hostile.root / 'aulas' / BAD_FILE}:" in _flat(hostile.ingest_stderr)
    assert "aula-a.srt" in hostile.ingest_stdout and "..-b-a-b" in hostile.ingest_stdout  # the sidecar's id, sanitised


def test_corpus_and_search_show_titles_and_text_verbatim(hostile: Hostile) -> None:
    shown = run_cli("corpus", "show", "..-b-a-b", store=hostile.store)
    assert shown.returncode == 0, shown.stderr
    assert TITLE_A in _flat(shown.stdout) and CUE_TEXT in _flat(shown.stdout)
    listed = run_cli("corpus", "list", store=hostile.store, env={"COLUMNS": "400"})
    assert f"E {RICH}" in _flat(listed.stdout) and "[[x]]" in listed.stdout
    found = run_cli("search", "fotossíntese clorofila", "--k", "6", store=hostile.store)
    assert found.returncode == 0, found.stderr
    assert TITLE_A in _flat(found.stdout) and CUE_TEXT in _flat(found.stdout)
    answered = run_cli("ask", QUESTION, "--llm", "none", "--k", "6", store=hostile.store)
    assert answered.returncode == 0, answered.stderr
    flat = _flat(answered.stdout)
    assert CUE_TEXT in flat and TITLE_A in flat and f"E {RICH}" in flat


def test_run_annotate_agreement_and_compare_show_names_and_labels_verbatim(hostile: Hostile) -> None:
    runs = run_cli("runs", store=hostile.store, env={"COLUMNS": "400"})
    assert RUN in _flat(runs.stdout)
    terminal = run_cli("annotate", RUN, "--annotator", TERMINAL_ANNOTATOR, store=hostile.store, input="s\nq\n")
    assert terminal.returncode == 0, terminal.stderr
    flat = _flat(terminal.stdout)
    assert LABEL_NAME in flat and f"a resposta está certa {RICH}" in flat and QUESTION in flat
    assert f"0 rótulo(s) gravado(s) por {TERMINAL_ANNOTATOR}." in flat
    summary = run_cli("agreement", RUN, store=hostile.store)
    assert summary.returncode == 0, summary.stderr
    assert f"Rodada {RUN}:" in _flat(summary.stdout)
    compared = run_cli("compare", RUN, RUN, store=hostile.store, env={"COLUMNS": "400"})
    assert compared.returncode == 0, compared.stderr
    assert f"{RUN} × {RUN}" in _flat(compared.stdout)
    rerun = run_cli("run", str(hostile.root / "perguntas.jsonl"), "--name", RUN, "--llm", "none", "--judge-llm",
                    "none", "--k", "6", store=hostile.store)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr  # a run stored under an old name is resumed, not refused
    assert f"Rodada '{RUN}' retomada" in _flat(rerun.stdout)


def test_eval_retrieval_shows_question_types_verbatim(hostile: Hostile) -> None:
    result = run_cli("eval", "retrieval", str(hostile.root / "perguntas.jsonl"), "--mode", "bm25", store=hostile.store)
    assert result.returncode == 0, result.stderr
    flat = _flat(result.stdout)
    assert RICH in flat and "[red]t[/red]" in flat
