"""Answers ↔ plain dicts, the one JSON shape used by the CLI, run storage and the web API."""

from __future__ import annotations

from typing import Any

from lecture_rag.links import hhmmss
from lecture_rag.records import Answer, CitedTime, Hit, Reference, Segment


def hit_to_dict(hit: Hit) -> dict[str, Any]:
    seg = hit.segment
    return {
        "rank": hit.rank,
        "corpus_id": seg.corpus_id,
        "score": hit.score,
        "rank_score": hit.rank_score,
        "bm25": hit.bm25,
        "sources": list(hit.sources),
        "video_id": seg.video_id,
        "title": seg.title,
        "course": seg.course,
        "video_url": seg.url,
        "url": seg.url_at(),
        "start": seg.start,
        "end": seg.end,
        "inicio": hhmmss(seg.start),
        "fim": hhmmss(seg.end),
        "text": seg.text,
    }


def hit_from_dict(d: dict[str, Any]) -> Hit:
    seg = Segment(
        corpus_id=int(d["corpus_id"]),
        video_id=d["video_id"],
        start=float(d["start"]),
        end=float(d["end"]),
        text=d["text"],
        url=d.get("video_url", ""),
        title=d.get("title", ""),
        course=d.get("course", ""),
    )
    return Hit(
        seg,
        d.get("score"),
        int(d["rank"]),
        float(d.get("rank_score") or 0.0),
        d.get("bm25"),
        tuple(d.get("sources") or ()),
    )


def reference_to_dict(ref: Reference) -> dict[str, Any]:
    return {
        "video_id": ref.video_id,
        "title": ref.title,
        "url": ref.url,
        "times": [{"n": t.number, "corpus_id": t.corpus_id, "start": t.start, "url": t.url} for t in ref.times],
    }


def reference_from_dict(d: dict[str, Any]) -> Reference:
    times = [CitedTime(int(t["n"]), int(t["corpus_id"]), float(t["start"]), t["url"]) for t in d["times"]]
    return Reference(d["video_id"], d["title"], d["url"], times)


def answer_to_dict(answer: Answer) -> dict[str, Any]:
    context_ids = [h.segment.corpus_id for h in answer.context]
    return {
        "question": answer.question,
        "language": answer.language,
        "answer": answer.text,
        "extractive": answer.extractive,
        "abstained": answer.abstained,
        "model": answer.model,
        "citations": answer.citations,
        "invalid_citations": answer.invalid_citations,
        "no_citations": answer.no_citations,
        "error": answer.error,
        "references": [reference_to_dict(r) for r in answer.references],
        "hits": [hit_to_dict(h) for h in answer.hits],
        "context_ids": context_ids,
        "context_size": len(context_ids),
        "context": [hit_to_dict(h) for h in answer.context],
        "dropped_segments": answer.dropped_segments,
        "timing": {
            "first_token_s": answer.first_token_s,
            "total_s": answer.total_s,
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
        },
    }


def answer_from_dict(d: dict[str, Any]) -> Answer:
    timing = d.get("timing") or {}
    return Answer(
        question=d["question"],
        language=d.get("language", "pt"),
        hits=[hit_from_dict(h) for h in d.get("hits", [])],
        context=[hit_from_dict(h) for h in d.get("context", [])],
        text=d.get("answer", ""),
        references=[reference_from_dict(r) for r in d.get("references", [])],
        citations=list(d.get("citations", [])),
        invalid_citations=list(d.get("invalid_citations", [])),
        abstained=bool(d.get("abstained")),
        extractive=bool(d.get("extractive")),
        no_citations=bool(d.get("no_citations")),
        model=d.get("model", ""),
        error=d.get("error", ""),
        prompt_tokens=int(timing.get("prompt_tokens") or 0),
        completion_tokens=int(timing.get("completion_tokens") or 0),
        first_token_s=timing.get("first_token_s"),
        total_s=timing.get("total_s"),
        dropped_segments=int(d.get("dropped_segments") or 0),
    )


def hide_urls(d: dict[str, Any]) -> dict[str, Any]:
    """The same dict with every URL replaced by ``oculto`` (as the seed hides them)."""
    out = dict(d)
    out["hits"] = [{**h, "url": "oculto", "video_url": "oculto"} for h in d.get("hits", [])]
    out["context"] = [{**h, "url": "oculto", "video_url": "oculto"} for h in d.get("context", [])]
    out["references"] = [
        {**r, "url": "oculto", "times": [{**t, "url": "oculto"} for t in r["times"]]} for r in d.get("references", [])
    ]
    return out
