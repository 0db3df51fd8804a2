"""Golden test: the seed's own content, rendered by our renderer, gives the seed file byte for byte."""

from __future__ import annotations

import re

from lecture_rag.records import CitedTime, Hit, Reference
from lecture_rag.report.markdown import RecordView, render_record
from tests.support.paths import SEED_DIR

SEED = SEED_DIR / "000_0e824fa9d48ba317.txt"


def _seconds(hms: str) -> float:
    h, m, s = (int(x) for x in hms.split(":"))
    return float(h * 3600 + m * 60 + s)


def _field(text: str, name: str) -> str:
    match = re.search(rf"^\*\*{re.escape(name)}\*\*: (.*)$", text, re.M)
    assert match, name
    return match.group(1)


def parse_seed(text: str) -> tuple[RecordView, int]:
    number, question = re.match(r"\*\*Pergunta (\d+)\*\*: (.*) $", text, re.M).groups()  # type: ignore[union-attr]
    hits = [
        Hit(int(cid), f"v{cid}", _seconds(start), _seconds(end), body, video_url="", score=float(score))
        for cid, score, _url, start, end, body in re.findall(
            r"- \*Corpus ID:\* (\d+)\n- \*Score:\* ([\d.]+)\n- \*URL:\* (.*)\n"
            r"- \*Início:\* ([\d:]+)\n- \*Fim:\* ([\d:]+)\n- \*Transcrição:\* (.*)\n",
            text,
        )
    ]
    n_refs = text.count("[Vídeo de referência oculto]()")
    refs = [Reference(video_id=f"v{i}", title=f"v{i}", url=f"https://youtu.be/abcdefghij{i}") for i in range(n_refs)]
    record = RecordView(
        number=int(number),
        question=question,
        hits=hits,
        answer=_field(text, "Resposta gerada pelo LLM"),
        references=refs,
        evaluated=True,
        manual_label=_field(text, "Anotação manual"),
        ar_score=float(_field(text, "Answer Relevance (AR)")),
        auto_label=_field(text, "Anotação automatizada"),
        ar_reasoning=_field(text, "Raciocínio (AR CoT)"),
    )
    return record, len(hits)


def test_seed_record_renders_byte_for_byte() -> None:
    seed = SEED.read_text(encoding="utf-8")
    record, n_hits = parse_seed(seed)
    assert n_hits == 10
    assert render_record(record, hide_urls=True) == seed


def test_visible_urls_and_reference_links() -> None:
    seed = SEED.read_text(encoding="utf-8")
    record, _ = parse_seed(seed)
    for hit in record.hits:
        hit.video_url = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"  # hit.url adds &t={int(hit.start)}s
    first = record.hits[0]  # starts at 00:42:50
    record.references = [
        Reference(
            "v0",
            "Aula 3 [IA]",
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            [CitedTime(1, first.corpus_id, 2570.0, "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=2570s")],
        )
    ]
    out = render_record(record)
    assert "- *URL:* https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=2570s\n" in out
    assert "oculto" not in out
    assert (
        "- [Aula 3 (IA)](https://www.youtube.com/watch?v=dQw4w9WgXcQ) — "
        "[00:42:50](https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=2570s)\n"
    ) in out


def test_record_without_evaluation_stops_after_references() -> None:
    record = RecordView(number=1, question="O que é?\n", hits=[], answer="linha 1\nlinha 2", references=[])
    out = render_record(record)
    assert out.startswith("**Pergunta 1**: O que é? \n")
    assert "**Resposta gerada pelo LLM**: linha 1 linha 2\n" in out
    assert "Anotação manual" not in out
    assert out.endswith("---\n")


def test_run_report_renders_the_seed_record() -> None:
    """The run report path (stored item, judgments, annotation) gives the seed file back."""
    from lecture_rag.records import RunItem
    from lecture_rag.report.run_report import markdown_report
    from lecture_rag.wire import from_data

    seed = SEED.read_text(encoding="utf-8")
    record, _ = parse_seed(seed)
    hits = [
        {
            "rank": i,
            "corpus_id": h.corpus_id,
            "score": h.score,
            "rank_score": h.score,
            "video_id": f"v{h.corpus_id}",
            "title": "",
            "video_url": "",
            "start": h.start,
            "end": h.end,
            "text": h.text,
        }
        for i, h in enumerate(record.hits, start=1)
    ]
    refs = [
        {
            "video_id": f"v{i}",
            "title": r.title,
            "url": r.url,
            "times": [{"n": i + 1, "corpus_id": hits[i]["corpus_id"], "start": hits[i]["start"], "url": r.url}],
        }
        for i, r in enumerate(record.references)
    ]
    item = from_data(
        RunItem,
        {
            "qid": "q71",
            "position": 70,
            "question": record.question,
            "meta": {},
            "answer": {
                "question": record.question,
                "language": "pt",
                "answer": record.answer,
                "hits": hits,
                "context": hits,
                "references": refs,
            },
            "judgments": {
                "answer_relevance": {
                    "kind": "answer_relevance",
                    "score_raw": 3,
                    "score": 1.0,
                    "parsed": True,
                    "reasoning": record.ar_reasoning,
                },
                "auto_label": {"kind": "auto_label", "label": record.auto_label, "parsed": True},
            },
            "annotations": {"ana": {"label": record.manual_label or "", "comment": "", "at": "2026-11-28"}},
        },
    )
    assert markdown_report([item], hide=True) == seed
