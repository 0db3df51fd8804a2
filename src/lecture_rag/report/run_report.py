"""Reports of a run: the seed's markdown records, CSV, JSON and one HTML page.

Every field of a run is data, whoever wrote it (a transcript, a question file,
an LLM, an annotator): the HTML page escapes all of it and forbids scripts by
its Content-Security-Policy, the markdown records show HTML as text, the CSV
neutralises cells a spreadsheet would run as formulas, and a URL becomes a
link only when :func:`lecture_rag.links.safe_url` accepts it.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader

from lecture_rag.errors import LectureRagError
from lecture_rag.evaluate.labels import scheme_of_run
from lecture_rag.evaluate.summary import RunOverview, auto_label, judgment_score, manual_label
from lecture_rag.links import safe_url
from lecture_rag.records import HIDDEN, Answer, RunConfig, RunItem
from lecture_rag.report.markdown import RecordView, render_records
from lecture_rag.report.plots import confusion_heatmap, group_bars, score_histograms
from lecture_rag.wire import to_data

NO_JUDGE = "nenhum juiz configurado"


def _manual_text(item: RunItem) -> str | None:
    label = manual_label(item)
    if label is None or len(item.annotations) < 2:
        return label
    votes = ", ".join(f"{who}={a.label}" for who, a in item.annotations.items())
    return f"{label} ({votes})"


def _reasoning(item: RunItem) -> str:
    j = item.judgments.get("answer_relevance")
    if j is not None and j.parsed:
        return j.reasoning
    return f"({(j.error if j else '') or NO_JUDGE}) {j.raw if j else ''}".strip()


def record_view(item: RunItem) -> RecordView:
    """The seed record of one run item; ``Pergunta N`` is its position in the question file."""
    answer = item.answer
    text = answer.text if not answer.error else f"(erro do LLM: {answer.error})"
    return RecordView(
        number=item.number,
        question=item.question,
        hits=list(answer.hits),
        answer=text,
        references=list(answer.references),
        evaluated=True,
        extractive=answer.extractive and not answer.error,
        manual_label=_manual_text(item),
        ar_score=judgment_score(item, "answer_relevance"),
        auto_label=auto_label(item),
        ar_reasoning=_reasoning(item),
    )


def markdown_report(items: list[RunItem], *, hide: bool = False) -> str:
    """Every question as the seed's record, in the seed's field order, separated by ``---``.

    ``Pergunta N`` is the question's position in the question file (1-based), as in every report.
    """
    return render_records([record_view(item) for item in items], hide_urls=hide)


CSV_FIELDS = [
    "n",
    "qid",
    "question",
    "answer",
    "extractive",
    "abstained",
    "no_citations",
    "references",
    "manual_label",
    "annotators",
    "annotator_comments",
    "auto_label",
    "answer_relevance",
    "context_relevance",
    "groundedness",
    "ar_reasoning",
    "top_corpus_ids",
    "top_score",
    "llm_error",
]


# What makes a spreadsheet read a cell as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula gets a leading ``'``; other values are unchanged.

    Numbers stay numbers (a negative score is not a formula); only text is user data.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _references_cell(answer: Answer, hide: bool) -> str:
    """Each cited video's title and its cited moments' links (``oculto`` when hiding; the second without a link)."""
    return "; ".join(
        f"{r.title} " + " ".join((HIDDEN if hide else safe_url(t.url)) or str(int(t.start)) for t in r.times)
        for r in answer.references
    )


def csv_report(items: list[RunItem], *, hide: bool = False) -> str:
    """One row per question; ``hide`` writes every link as ``oculto``."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for item in items:
        a = item.answer
        row = {
            "n": item.number,
            "qid": item.qid,
            "question": item.question,
            "answer": a.text,
            "extractive": a.extractive,
            "abstained": a.abstained,
            "no_citations": a.no_citations,
            "references": _references_cell(a, hide),
            "manual_label": manual_label(item) or "",
            "annotators": "; ".join(f"{w}={v.label}" for w, v in item.annotations.items()),
            "annotator_comments": "; ".join(f"{w}: {v.comment}" for w, v in item.annotations.items() if v.comment),
            "auto_label": auto_label(item) or "",
            "answer_relevance": judgment_score(item, "answer_relevance"),
            "context_relevance": judgment_score(item, "context_relevance"),
            "groundedness": judgment_score(item, "groundedness"),
            "ar_reasoning": _reasoning(item),
            "top_corpus_ids": " ".join(str(h.corpus_id) for h in a.hits),
            "top_score": a.hits[0].score if a.hits else "",
            "llm_error": a.error,
        }
        writer.writerow({field: spreadsheet_cell(value) for field, value in row.items()})
    return buffer.getvalue()


def json_report(name: str, config: RunConfig, items: list[RunItem], summary: RunOverview, *, hide: bool = False) -> str:
    """The run's configuration, its numbers and every record; ``hide`` writes every video URL as ``oculto``."""
    records = [{"n": item.number, **to_data(item, hide_urls=hide)} for item in items]
    data = {"run": name, "config": to_data(config), "summary": to_data(summary), "records": records}
    return json.dumps(data, ensure_ascii=False, indent=2)


def html_report(name: str, config: RunConfig, items: list[RunItem], summary: RunOverview, *, hide: bool = False) -> str:
    """One page: summary tables, plots (AR histogram, confusion heat map), then every record with each
    annotator's label and comment (the comment is why a person chose the label; the page must not drop it)."""
    # autoescape=True: the template's name ends in .j2, which select_autoescape() never escaped (issue 16).
    env = Environment(loader=PackageLoader("lecture_rag.report", "templates"), autoescape=True)
    env.filters["safe_url"] = safe_url
    agreement, versus = summary.agreement, summary.judge_vs_people
    plots = {
        "histogram": score_histograms(summary.ar_by_manual_label) if summary.ar_by_manual_label else "",
        "confusion": confusion_heatmap(agreement.confusion, agreement.labels) if agreement else "",
        "by_length": group_bars(versus.by_length, "Por tamanho da resposta") if versus else "",
        "by_position": group_bars(versus.by_position, "Pela posição do fato correto")
        if versus and versus.by_position
        else "",
    }
    records = [record_view(item) for item in items]
    return env.get_template("run.html.j2").render(
        name=name,
        config=config,
        summary=summary,
        plots=plots,
        records=records,
        annotations=[item.annotations for item in items],  # each annotator's label and comment, as they put them
        hide=hide,
        labels=scheme_of_run(config).codes,
    )


# Why a report file could not be written, in the user's words.
_WRITE_PROBLEMS = {
    errno.EACCES: "sem permissão de escrita",
    errno.EPERM: "sem permissão de escrita",
    errno.EROFS: "o sistema de arquivos é somente leitura",
    errno.ENOSPC: "o disco está cheio",
    errno.EDQUOT: "a cota de disco acabou",
    errno.EFBIG: "o arquivo passou do limite de tamanho deste processo",
    errno.ENOTDIR: "um arquivo está no lugar de uma das pastas do caminho",
    errno.EEXIST: "um arquivo está no lugar de uma das pastas do caminho",
    errno.ENAMETOOLONG: "o nome é longo demais",
}


def write_report(path: Path, text: str) -> None:
    """Write a report file, creating missing folders; an existing report is replaced whole, never half-written."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if path.is_dir():
            raise LectureRagError(
                f"{path} é uma pasta; passe em -o o caminho de um arquivo, ex.: {path / 'relatorio.md'}."
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        cause = _WRITE_PROBLEMS.get(exc.errno or 0, exc.strerror or str(exc))
        raise LectureRagError(
            f"Não foi possível gravar o relatório em {path}: {cause}. Nada foi gravado; escolha em -o um caminho "
            "numa pasta onde você possa escrever e rode de novo."
        ) from exc
