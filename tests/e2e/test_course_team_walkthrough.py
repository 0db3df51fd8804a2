"""The course team's walkthrough (issue 25), one test through the real CLI, the real server and a real browser.

A folder of three recordings' captions (built from real NURC-SP transcripts) with a manifest giving
titles and courses; ingest; one title changed with ``corpus edit``; a misheard word fixed in one
caption file and the folder ingested again; a question file with reference answers run without an
LLM; two items annotated by two people, one on the web page in Chromium and one in the terminal
annotator on a real pty, each with a comment; ``agreement``; ``report --format html``. Then every
title, course and comment must be where the person put it, and the fixed word searchable.
"""

from __future__ import annotations

import csv
import html
import json
import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.support.browser import Watch, log_in
from tests.support.cli import run_cli
from tests.support.paths import QUESTIONS, shared
from tests.support.terminal import Terminal
from tests.support.transcripts import srt_text
from tests.support.web import start_web

RUN = "percurso"
MISHEARD, FIXED = "lasco", "lascaux"  # what speech recognition heard for the Lascaux cave, and the fix
#: file → (NURC recording whose first five minutes it holds, title and course in the manifest)
LECTURES = {
    "aula-01": ("sentences_SP_EF_405.csv", "Pré-história: a arte do paleolítico", "História da Arte"),
    "aula-02": ("sentences_SP_EF_124.csv", "Linguagem e comportamento", "Antropologia"),
    "aula-03": ("sentences_SP_EF_153.csv", "O cinema brasileiro nos anos trinta", "História do Cinema"),
}
EDITED = "Whorf: a linguagem e o tempo dos hopi"  # aula-02's title, set with corpus edit after the ingest
#: The question file: three questions of the repository's NURC set, one per lecture, with their reference answers.
QUESTION_OF = {"aula-01": "nurc-050", "aula-02": "nurc-002", "aula-03": "nurc-016"}
WEB_COMMENT = "cita as duas cavernas, Altamira e Lascaux"
TERMINAL_COMMENT = "faltou dizer que a epopeia é de Gilgamesh"


def _captions(folder: Path, name: str, recording: str, *, misheard: bool) -> None:
    """The first five minutes of a NURC transcript as an SRT file, with its real times."""
    with shared("nurc-sp", "transcripts", recording).open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle, delimiter=";") if r["text"].strip()]
    cues = [(float(r["start_sec"].replace(",", ".")), float(r["end_sec"].replace(",", ".")), r["text"]) for r in rows]
    cues = [(a, b, text) for a, b, text in cues if a < 300]
    if misheard:
        cues = [(a, b, re.sub(rf"\b{FIXED}\b", MISHEARD, text)) for a, b, text in cues]
    (folder / f"{name}.srt").write_text(srt_text(cues), encoding="utf-8")


def _course(root: Path) -> Path:
    folder = root / "gravacoes"
    folder.mkdir()
    manifest = []
    for name, (recording, title, course) in LECTURES.items():
        _captions(folder, name, recording, misheard=name == "aula-01")
        manifest.append(f'[[lecture]]\nfile = "{name}.srt"\ntitle = "{title}"\ncourse = "{course}"\n')
    (folder / "lecture-rag.toml").write_text('language = "pt"\n\n' + "\n".join(manifest), encoding="utf-8")
    return folder


def _questions(root: Path) -> Path:
    nurc = {(obj := json.loads(line))["id"]: obj for line in QUESTIONS.read_text(encoding="utf-8").splitlines()}
    lines = []
    for video, qid in QUESTION_OF.items():
        question = dict(nurc[qid])
        question["evidence"] = [{**e, "video_id": video} for e in question["evidence"]]
        lines.append(json.dumps(question, ensure_ascii=False))
    path = root / "perguntas.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _cli(store: Path, *args: str) -> str:
    result = run_cli(*args, store=store)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return " ".join(result.stdout.split())


def _annotate_on_the_web(pg: Page, base_url: str) -> None:
    """Ana labels the first two answers on the annotation page, with a comment on the first."""
    pg.goto(f"{base_url}/runs/{RUN}/annotate")
    pg.fill("#annotator-input", "ana")
    pg.get_by_role("button", name="Começar").click()
    expect(pg.locator("body")).to_have_attribute("data-ready", "1")
    expect(pg.locator("#record")).to_have_attribute("data-qid", QUESTION_OF["aula-01"])
    pg.fill("#comment", WEB_COMMENT)
    pg.locator("h1").click()  # out of the text box: keys label again
    pg.keyboard.press("c")
    expect(pg.locator("#saved")).to_contain_text("Pergunta 1 gravada como C")
    expect(pg.locator("#record")).to_have_attribute("data-qid", QUESTION_OF["aula-02"])
    pg.keyboard.press("p")
    expect(pg.locator("#saved")).to_contain_text("Pergunta 2 gravada como P")


def _annotate_in_the_terminal(store: Path) -> None:
    """Bia labels the same two answers in the terminal annotator, with a comment on the second."""
    with Terminal(["annotate", RUN, "--annotator", "bia"], store) as term:
        term.expect("q = sair")
        term.label("c")
        assert f"Observação: {TERMINAL_COMMENT}" in term.comment(TERMINAL_COMMENT)
        term.label("i")
        term.key("q")
        assert term.close() == 0


def test_course_team_walkthrough(tmp_path: Path, page: tuple[Page, Watch]) -> None:
    store = tmp_path / "acervo"
    folder = _course(tmp_path)
    first = _cli(store, "ingest", str(folder), "--no-index")
    assert first.count("adicionado") == 3
    edited = _cli(store, "corpus", "edit", "aula-02", "--title", EDITED)
    assert f"aula-02: título: '{LECTURES['aula-02'][1]}' → '{EDITED}'" in edited

    _captions(folder, "aula-01", LECTURES["aula-01"][0], misheard=False)  # the misheard word fixed
    again = _cli(store, "ingest", str(folder))
    assert "substituído" in again and again.count("sem mudança") == 2
    assert "título" not in again and "curso" not in again  # the manifest did not change: the edit stays

    ran = run_cli("run", str(_questions(tmp_path)), "--name", RUN, "--llm", "none", "--judge-llm", "none",
                  "--k", "3", store=store)  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr

    server = start_web(store, tmp_path / "serve.log")
    try:
        pg, _ = page
        log_in(pg, server)
        _annotate_on_the_web(pg, server.base_url)
        _annotate_in_the_terminal(store)
        pg.goto(f"{server.base_url}/aulas")
        lectures_page = " ".join(pg.locator("main").inner_text().split())
    finally:
        server.stop()

    agreement = _cli(store, "agreement", RUN)
    assert "3 perguntas, 2 com anotação manual" in agreement and "Entre anotadores" in agreement
    report_file = tmp_path / "relatorio.html"
    _cli(store, "report", RUN, "--format", "html", "--output", str(report_file))
    report = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", report_file.read_text(encoding="utf-8"))).split())

    titles = {name: EDITED if name == "aula-02" else title for name, (_, title, _) in LECTURES.items()}
    listed = _cli(store, "corpus", "list")
    for name, (_, _, course) in LECTURES.items():
        for where, text in (("corpus list", listed), ("/aulas", lectures_page)):
            assert titles[name] in text and course in text, (where, name, text)
        # each question retrieved its lecture's segments, shown under the title and course the team gave it
        assert f"{titles[name]} ({course})" in report, name
    for where, text in (("corpus list", listed), ("/aulas", lectures_page), ("relatório", report)):
        assert LECTURES["aula-02"][1] not in text, where  # the manifest's old title is gone everywhere
    assert f"ana: C — “{WEB_COMMENT}”" in report and f"bia: I — “{TERMINAL_COMMENT}”" in report
    assert "ana: P" in report and "bia: C" in report

    found = json.loads(_cli(store, "search", FIXED, "--json"))
    top = found["hits"][0] if isinstance(found, dict) else found[0]
    assert top["video_id"] == "aula-01" and FIXED in top["text"], top
    shown = " ".join(str(s["text"]) for s in json.loads(_cli(store, "corpus", "show", "aula-01", "--json")))
    assert FIXED in shown and not re.search(rf"\b{MISHEARD}\b", shown)
