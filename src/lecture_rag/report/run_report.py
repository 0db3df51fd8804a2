"""Reports of a run: the seed's markdown records, CSV, JSON and one HTML page."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from lecture_rag.evaluate.labels import scheme_of_run
from lecture_rag.evaluate.summary import auto_label, judgment_score, manual_label
from lecture_rag.records import RunItem
from lecture_rag.report.markdown import RecordView, render_records
from lecture_rag.report.plots import confusion_heatmap, score_histograms
from lecture_rag.wire import hide_urls, to_data

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
    "auto_label",
    "answer_relevance",
    "context_relevance",
    "groundedness",
    "ar_reasoning",
    "top_corpus_ids",
    "top_score",
    "llm_error",
]


def csv_report(items: list[RunItem], *, hide: bool = False) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for item in items:
        data = to_data(item.answer)
        a = hide_urls(data) if hide else data
        refs = "; ".join(
            f"{r['title']} " + " ".join(t["url"] or str(int(t["start"])) for t in r["times"]) for r in a["references"]
        )
        hits = a.get("hits", [])
        writer.writerow(
            {
                "n": item.number,
                "qid": item.qid,
                "question": item.question,
                "answer": a.get("answer", ""),
                "extractive": a.get("extractive"),
                "abstained": a.get("abstained"),
                "no_citations": a.get("no_citations"),
                "references": refs,
                "manual_label": manual_label(item) or "",
                "annotators": "; ".join(f"{w}={v.label}" for w, v in item.annotations.items()),
                "auto_label": auto_label(item) or "",
                "answer_relevance": judgment_score(item, "answer_relevance"),
                "context_relevance": judgment_score(item, "context_relevance"),
                "groundedness": judgment_score(item, "groundedness"),
                "ar_reasoning": _reasoning(item),
                "top_corpus_ids": " ".join(str(h["corpus_id"]) for h in hits),
                "top_score": hits[0]["score"] if hits else "",
                "llm_error": a.get("error", ""),
            }
        )
    return buffer.getvalue()


def json_report(
    name: str, config: dict[str, Any], items: list[RunItem], summary: dict[str, Any], *, hide: bool = False
) -> str:
    records = []
    for item in items:
        data = to_data(item)
        if hide:
            data["answer"] = hide_urls(data["answer"])
        records.append({"n": item.number, **data})
    return json.dumps(
        {"run": name, "config": config, "summary": summary, "records": records}, ensure_ascii=False, indent=2
    )


def html_report(
    name: str, config: dict[str, Any], items: list[RunItem], summary: dict[str, Any], *, hide: bool = False
) -> str:
    """One page: summary tables, plots (AR histogram, confusion heat map), then every record."""
    env = Environment(loader=PackageLoader("lecture_rag.report", "templates"), autoescape=select_autoescape())
    agreement = summary.get("agreement")
    plots = {
        "histogram": score_histograms(summary["ar_by_manual_label"]) if summary.get("ar_by_manual_label") else "",
        "confusion": confusion_heatmap(agreement["confusion"], agreement["labels"]) if agreement else "",
    }
    records = [record_view(item) for item in items]
    return env.get_template("run.html.j2").render(
        name=name,
        config=config,
        summary=summary,
        plots=plots,
        records=records,
        hide=hide,
        labels=scheme_of_run(config).codes,
    )
