"""Run items → the annotation page's records, which hide the automated label until the person has chosen."""

from __future__ import annotations

from lecture_rag.evaluate.labels import LabelScheme
from lecture_rag.evaluate.summary import auto_label
from lecture_rag.records import RunItem
from lecture_rag.web.models import LabelOut, RecordOut


def labels_out(scheme: LabelScheme) -> list[LabelOut]:
    """The run's labels as annotators see them: code, key, name and guide."""
    return [LabelOut(code=d.code, key=key, name=d.name, description=d.guide_text) for key, d in scheme.keyed()]


def record_out(item: RunItem, annotator: str | None) -> RecordOut:
    """One run item; the automated label stays hidden from ``annotator`` until they have labelled it.

    Hiding it in the API, not only in the page, keeps the person from being
    anchored by it even with the browser's developer tools open.
    """
    hidden = annotator is not None and annotator not in item.annotations
    return RecordOut(
        qid=item.qid,
        number=item.number,
        question=item.question,
        answer=item.answer,
        reference=item.meta.answer or None,
        answer_relevance=item.judgments.get("answer_relevance"),
        auto_label=None if hidden else auto_label(item),
        auto_label_hidden=hidden,
        annotations=dict(item.annotations),
    )
