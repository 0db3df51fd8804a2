"""Hostile text and URLs in every report format (issue 16): shown as text, never run, never a link.

The browser checks of the same outputs are in ``tests/e2e/test_hostile_output.py``.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import tempfile
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from lecture_rag.errors import LectureRagError
from lecture_rag.evaluate.summary import AnswerCounts, run_summary
from lecture_rag.records import RunConfig, RunItem
from lecture_rag.report.markdown import RecordView, render_record
from lecture_rag.report.run_report import csv_report, html_report, markdown_report, write_report
from lecture_rag.wire import from_data

SCRIPT = "<script>alert('x')</script>"
IMG = "<img src=x onerror=alert('img')>"
ANCHOR = "<a href=\"javascript:alert('a')\">clique</a>"
MD_LINK = "[clique](javascript:alert('md'))"
MD_IMAGE = "![foto](javascript:alert('mdimg'))"
AUTOLINK = "<javascript:alert('auto')>"
ENTITY = "javascript&colon;alert('ent')"
HOSTILE = f"{SCRIPT} {IMG} {ANCHOR} {MD_LINK} {MD_IMAGE} {AUTOLINK} {ENTITY}"
BAD_URLS = [
    "javascript:alert('url')",
    "data:text/html,<script>alert('data')</script>",
    "vbscript:msgbox('vb')",
    "file:///etc/passwd",
]
PAREN_URL = "https://media.example.org/a)[x](javascript:alert('paren')"


def hostile_item(url: str, position: int = 0, question: str = HOSTILE) -> RunItem:
    """A stored run item whose every text field and URL is hostile."""
    hit = {
        "rank": 1,
        "corpus_id": 7,
        "score": 0.9,
        "rank_score": 0.9,
        "video_id": "v1",
        "title": f"Aula {HOSTILE}",
        "video_url": url,
        "start": 125.0,
        "end": 240.0,
        "text": f"fala {HOSTILE}\r# título\r<script>alert('cr')</script>",
    }
    ref = {
        "video_id": "v1",
        "title": f"Aula {HOSTILE}",
        "url": url,
        "times": [{"n": 1, "corpus_id": 7, "start": 125.0, "url": url}],
    }
    return from_data(
        RunItem,
        {
            "qid": f"q{position}",
            "position": position,
            "question": question,
            "meta": {},
            "answer": {
                "question": question,
                "language": "pt",
                "answer": f"Resposta [1] {HOSTILE}",
                "hits": [hit],
                "context": [hit],
                "references": [ref],
                "error": "",
            },
            "judgments": {
                "answer_relevance": {
                    "kind": "answer_relevance",
                    "score_raw": 2,
                    "score": 2 / 3,
                    "parsed": True,
                    "reasoning": f"Raciocínio {HOSTILE}",
                },
                "auto_label": {"kind": "auto_label", "label": "P", "parsed": True},
            },
            "annotations": {
                IMG: {"label": "C", "comment": HOSTILE, "at": ""},
                "=cmd|' /C calc'!A0": {"label": "P", "comment": "", "at": ""},
            },
        },
    )


def markdown_links(markdown: str) -> tuple[str, list[str]]:
    """The HTML a permissive markdown viewer makes of ``markdown`` (raw HTML on, every link target allowed)."""
    md = MarkdownIt("commonmark", {"html": True})
    md.validateLink = lambda url: True  # viewers that do not filter link schemes
    html = md.render(markdown)
    return html, re.findall(r'(?:href|src)="([^"]*)"', html)


@pytest.mark.parametrize("url", [*BAD_URLS, PAREN_URL])
def test_markdown_report_shows_html_as_text_and_links_only_http(url: str) -> None:
    out = markdown_report([hostile_item(url)])
    assert not re.search(r"<[A-Za-z/!?]", out), "HTML da rodada chegou cru ao markdown"
    assert "&lt;script>alert('x')&lt;/script>" in out  # shown as text, not dropped
    html, targets = markdown_links(out)
    assert "<script" not in html and "<img" not in html and '<a href="javascript' not in html
    for target in targets:
        assert target == "" or target.startswith("https://"), target


def test_markdown_without_html_keeps_its_bytes() -> None:
    """Text with <, > and & that is not HTML stays as it was (the seed layout is byte for byte)."""
    text = "P&D custa 5 < 6 e 7 > 3; [1] e [2] (ver aula) — a <- b, R&B"
    record = RecordView(number=1, question=text, hits=[], answer=text, references=[])
    out = render_record(record)
    assert out.startswith(f"**Pergunta 1**: {text} \n")
    assert f"**Resposta gerada pelo LLM**: {text}\n" in out


def test_markdown_line_breaks_of_every_kind_stay_on_one_line() -> None:
    """A lone carriage return is a line ending for markdown: it would start a heading or an HTML block."""
    record = RecordView(number=1, question="a\rb\r\nc\nd", hits=[], answer="x\r# título", references=[])
    out = render_record(record)
    assert "**Pergunta 1**: a b c d \n" in out
    assert "**Resposta gerada pelo LLM**: x # título\n" in out
    assert "\r" not in out


def test_csv_neutralises_formulas_only_in_cells_that_start_one() -> None:
    items = [
        hostile_item("https://youtu.be/dQw4w9WgXcQ", 0, '=HYPERLINK("http://evil.example","x")'),
        hostile_item("https://youtu.be/dQw4w9WgXcQ", 1, "+1+1"),
        hostile_item("https://youtu.be/dQw4w9WgXcQ", 2, "-2+3"),
        hostile_item("https://youtu.be/dQw4w9WgXcQ", 3, "@SUM(A1:A2)"),
        hostile_item("https://youtu.be/dQw4w9WgXcQ", 4, "\t=1+1"),
        hostile_item("https://youtu.be/dQw4w9WgXcQ", 5, "\r=1+1"),
        hostile_item("https://youtu.be/dQw4w9WgXcQ", 6, "Quanto é 1+1 = 2?"),
    ]
    rows = list(csv.DictReader(io.StringIO(csv_report(items))))
    assert [r["question"] for r in rows] == [
        '\'=HYPERLINK("http://evil.example","x")',
        "'+1+1",
        "'-2+3",
        "'@SUM(A1:A2)",
        "'\t=1+1",
        "'\r=1+1",
        "Quanto é 1+1 = 2?",
    ]
    for row in rows:
        for field, value in row.items():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), (field, value)
    first = rows[0]
    assert first["n"] == "1" and first["answer_relevance"] == str(2 / 3) and first["top_score"] == "0.9"
    assert first["annotators"].startswith("<img src=x onerror=alert('img')>=C; =cmd")  # not at the start: kept


def test_csv_keeps_negative_numbers_as_numbers() -> None:
    item = hostile_item("https://youtu.be/dQw4w9WgXcQ")
    item.answer.hits[0].score = -0.25
    row = next(csv.DictReader(io.StringIO(csv_report([item]))))
    assert row["top_score"] == "-0.25"


def test_csv_references_have_no_hostile_url() -> None:
    rows = list(csv.DictReader(io.StringIO(csv_report([hostile_item(u) for u in BAD_URLS]))))
    for row in rows:  # the cited second instead of the URL, as for a video without one
        assert row["references"] == f"Aula {HOSTILE} 125"


class _Tags(HTMLParser):
    """Every start tag with its attributes, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, Any]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def html_tags(page: str) -> list[tuple[str, dict[str, Any]]]:
    parser = _Tags()
    parser.feed(page)
    return parser.tags


@pytest.mark.parametrize("url", [*BAD_URLS, PAREN_URL, "https://youtu.be/dQw4w9WgXcQ"])
def test_html_report_escapes_every_field_and_links_only_http(url: str) -> None:
    items = [hostile_item(url)]
    config = RunConfig(llm=SCRIPT, judge_llm=IMG, mode="dense", k=5, embedder=ANCHOR)
    summary = replace(
        run_summary([]), questions=1, answers=AnswerCounts(1, 0, 0, 0, 0), annotated=1, judges={}, agreement_note=SCRIPT
    )
    page = html_report(f"rodada {IMG}", config, items, summary)
    tags = html_tags(page)
    names = [t for t, _ in tags]
    assert "script" not in names and "img" not in names, names
    for tag, attrs in tags:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        for name in ("href", "src", "action", "formaction"):
            if name in attrs:
                assert attrs[name].startswith("https://"), (tag, attrs)
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page


def test_html_report_forbids_scripts_by_policy() -> None:
    """Belt and braces: even a field the template forgot to escape could not run script."""
    page = html_report("r", RunConfig(), [], run_summary([]))
    policy = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page)
    assert policy and "script-src 'none'" in policy.group(1) and "default-src 'none'" in policy.group(1)


def test_write_report_creates_missing_folders(tmp_path: Path) -> None:
    target = tmp_path / "novos" / "relatorios" / "r.md"
    write_report(target, "texto\n")
    assert target.read_text(encoding="utf-8") == "texto\n"
    write_report(target, "outro\n")
    assert target.read_text(encoding="utf-8") == "outro\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["r.md"]


def test_write_report_refuses_a_folder_or_a_file_in_the_way(tmp_path: Path) -> None:
    with pytest.raises(LectureRagError, match="é uma pasta"):
        write_report(tmp_path, "x")
    blocker = tmp_path / "arquivo.txt"
    blocker.write_text("fica", encoding="utf-8")
    with pytest.raises(LectureRagError, match=r"arquivo\.txt/r\.md: um arquivo está no lugar de uma das pastas"):
        write_report(blocker / "r.md", "x")
    with pytest.raises(LectureRagError, match=r"arquivo\.txt/sub/r\.md: um arquivo está no lugar de uma das pastas"):
        write_report(blocker / "sub" / "r.md", "x")
    assert blocker.read_text(encoding="utf-8") == "fica"


def _write_as_user(target: Path) -> tuple[int, str]:
    """``write_report`` in a forked child that drops root (who writes anyway) for ``nobody``: (exit code, message)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code, message = 0, ""
        try:
            os.close(read_end)
            if os.geteuid() == 0:
                os.setuid(65534)
            write_report(target, "novo")
        except LectureRagError as exc:
            code, message = 2, str(exc)
        except BaseException as exc:
            code, message = 3, repr(exc)
        os.write(write_end, message.encode())
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), message


def test_write_report_names_a_read_only_folder() -> None:
    """A folder the user may not write to; as root (who writes anyway) the writer runs as ``nobody``."""
    parent = Path(tempfile.mkdtemp(prefix="lr-somente-leitura-"))
    try:
        parent.chmod(0o755)
        folder = parent / "somente-leitura"
        folder.mkdir()
        (folder / "r.md").write_text("antigo", encoding="utf-8")
        folder.chmod(0o555)
        code, message = _write_as_user(folder / "r.md")
        assert code == 2, message
        assert "sem permissão de escrita" in message
        assert (folder / "r.md").read_text(encoding="utf-8") == "antigo"
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def test_write_report_names_a_name_too_long(tmp_path: Path) -> None:
    with pytest.raises(LectureRagError, match="o nome é longo demais") as caught:
        write_report(tmp_path / ("r" * 300 + ".md"), "x")
    assert "escolha em -o um caminho" in str(caught.value)
    assert list(tmp_path.iterdir()) == []
