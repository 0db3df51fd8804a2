"""Store records → API payloads, with what the page needs to play a video at a second.

The player descriptor is decided here, not in the browser: only an http(s)
URL may become a ``<video>`` source and only a validated YouTube id an
embed URL, so no ``javascript:`` or ``file:`` URL from a transcript's
metadata can ever reach an ``src`` attribute.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse, urlunparse

from lecture_rag.evaluate.labels import LabelScheme
from lecture_rag.evaluate.runs import RunItem
from lecture_rag.links import hhmmss, youtube_id
from lecture_rag.records import Hit, Video
from lecture_rag.report.serialize import hit_to_dict
from lecture_rag.web.models import (
    AnnotationOut,
    AnswerOut,
    HitOut,
    JudgmentOut,
    LabelOut,
    Player,
    RecordOut,
    VideoOut,
)

YOUTUBE_EMBED = "https://www.youtube.com/embed/"


def player_for(url: str) -> Player:
    """How to play ``url``: embedded YouTube, HTML5 media (http/https only), or not at all."""
    url = (url or "").strip()
    if not url:
        return Player(kind="none")
    vid = youtube_id(url)
    if vid:
        return Player(kind="youtube", src=YOUTUBE_EMBED + vid, youtube_id=vid)
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https") and parsed.netloc:
        return Player(kind="media", src=urlunparse(parsed._replace(fragment="")))
    return Player(kind="none")


def _with_player(hit: dict[str, Any]) -> dict[str, Any]:
    return {**hit, "player": player_for(str(hit.get("video_url") or ""))}


def hit_out(hit: Hit) -> HitOut:
    return HitOut.model_validate(_with_player(hit_to_dict(hit)))


def answer_out(answer: dict[str, Any]) -> AnswerOut:
    """An :func:`answer_to_dict` dict (fresh or stored in a run) as the API shape."""
    refs = [
        {
            **ref,
            "player": player_for(str(ref.get("url") or "")),
            "times": [{**t, "inicio": hhmmss(float(t["start"]))} for t in ref.get("times", [])],
        }
        for ref in answer.get("references", [])
    ]
    return AnswerOut.model_validate(
        {
            **answer,
            "hits": [_with_player(h) for h in answer.get("hits", [])],
            "context": [_with_player(h) for h in answer.get("context", [])],
            "references": refs,
            "timing": answer.get("timing") or {},
        }
    )


def video_out(video: Video) -> VideoOut:
    return VideoOut(
        video_id=video.video_id,
        title=video.title,
        course=video.course,
        url=video.url,
        language=video.language,
        duration=video.duration,
        n_segments=video.n_segments,
        player=player_for(video.url),
    )


def labels_out(scheme: LabelScheme) -> list[LabelOut]:
    """The run's labels as annotators see them: code, key, name and guide."""
    return [LabelOut(code=d.code, key=key, name=d.name, description=d.guide_text) for key, d in scheme.keyed()]


def _judgment(data: dict[str, Any] | None, kind: str) -> JudgmentOut | None:
    if not data:
        return None
    return JudgmentOut(
        kind=kind,
        score=data.get("score"),
        label=data.get("label"),
        reasoning=str(data.get("reasoning") or ""),
        parsed=bool(data.get("parsed")),
        error=str(data.get("error") or ""),
        model=str(data.get("model") or ""),
    )


def automated_label(item: RunItem) -> str | None:
    """The judge's predicted label, when it produced a readable one."""
    j = item.judgments.get("auto_label") or {}
    return str(j["label"]) if j.get("parsed") and j.get("label") else None


def record_out(item: RunItem, annotator: str | None) -> RecordOut:
    """One run item; the automated label stays hidden from ``annotator`` until they have labelled it.

    Hiding it in the API, not only in the page, keeps the person from being
    anchored by it even with the browser's developer tools open.
    """
    hidden = annotator is not None and annotator not in item.annotations
    return RecordOut(
        qid=item.qid,
        number=item.position + 1,
        question=item.question,
        answer=answer_out(item.answer),
        answer_relevance=_judgment(item.judgments.get("answer_relevance"), "answer_relevance"),
        auto_label=None if hidden else automated_label(item),
        auto_label_hidden=hidden,
        annotations={
            who: AnnotationOut(label=a["label"], comment=a.get("comment", ""), at=a.get("at", ""))
            for who, a in item.annotations.items()
        },
    )
