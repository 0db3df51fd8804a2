"""Question sets: our JSON Lines format and SQuAD-format files.

JSON Lines, one object per question::

    {"id": "q1", "question": "...", "answer": "..." | null,
     "evidence": [{"video_id": "SP_EF_405", "start": 120.0, "end": 150.0}],
     "type": "factual", "label": "C"}

``answer: null`` marks a question the lectures do not answer. In SQuAD files
(FaQuAD, SQuAD-pt) the paragraph is the unit: each paragraph becomes a
pseudo-video ``squad-{n}`` with one segment spanning [0, 1].
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lecture_rag.errors import LectureRagError
from lecture_rag.records import Evidence, Question, Video
from lecture_rag.store import SegmentDraft, Store

SQUAD_SPAN = (0.0, 1.0)


@dataclass(slots=True)
class Paragraph:
    """A SQuAD paragraph used as a one-segment pseudo-video."""

    video_id: str
    title: str
    text: str


def is_squad(path: Path) -> bool:
    """SQuAD files are one JSON object with ``data[].paragraphs``."""
    if path.suffix.lower() != ".json":
        return False
    with path.open(encoding="utf-8-sig") as handle:
        head = handle.read(2048)
    return head.lstrip().startswith("{") and '"data"' in head


def load_questions(path: Path) -> list[Question]:
    """Questions from a JSONL file or a SQuAD file, with clear errors per line."""
    if not path.exists():
        raise LectureRagError(f"Arquivo de perguntas não encontrado: {path}")
    if is_squad(path):
        return load_squad(path)[1]
    questions = list(_jsonl_questions(path))
    if not questions:
        raise LectureRagError(f"{path}: nenhuma pergunta encontrada (esperado JSON Lines ou SQuAD).")
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise LectureRagError(f"{path}: id de pergunta repetido: {dup!r}. Cada pergunta precisa de um id único.")
    return questions


def _jsonl_questions(path: Path) -> Iterator[Question]:
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                yield _question(obj, number)
            except (ValueError, KeyError, TypeError) as exc:
                raise LectureRagError(
                    f"{path}, linha {number}: pergunta inválida ({exc}). Formato: "
                    '{"id": ..., "question": ..., "answer": ... | null, "evidence": '
                    '[{"video_id", "start", "end"}]}'
                ) from exc


def _question(obj: dict[str, Any], number: int) -> Question:
    text = str(obj["question"]).strip()
    if not text:
        raise ValueError("campo 'question' vazio")
    evidence = [Evidence(str(e["video_id"]), float(e["start"]), float(e["end"])) for e in obj.get("evidence") or []]
    return Question(
        id=str(obj.get("id", f"q{number}")),
        question=text,
        answer=None if obj.get("answer") is None else str(obj["answer"]),
        evidence=evidence,
        type=str(obj.get("type") or ""),
        label=obj.get("label"),
    )


def load_squad(path: Path) -> tuple[list[Paragraph], list[Question]]:
    """Paragraphs and questions of a SQuAD-format file (paragraph = relevant unit)."""
    with path.open(encoding="utf-8-sig") as handle:
        data = json.load(handle)
    paragraphs: list[Paragraph] = []
    questions: list[Question] = []
    for article in data.get("data", []):
        title = str(article.get("title", ""))
        for para in article.get("paragraphs", []):
            vid = f"squad-{len(paragraphs):05d}"
            paragraphs.append(Paragraph(vid, title, str(para["context"])))
            for qa in para.get("qas", []):
                answers = qa.get("answers") or []
                questions.append(
                    Question(
                        id=str(qa.get("id", f"{vid}-{len(questions)}")),
                        question=str(qa["question"]).strip(),
                        answer=str(answers[0]["text"]) if answers else None,
                        evidence=[Evidence(vid, *SQUAD_SPAN)],
                        type=title,
                    )
                )
    if not paragraphs:
        raise LectureRagError(f"{path}: arquivo SQuAD sem parágrafos.")
    return paragraphs, questions


def ensure_squad_corpus(store: Store, paragraphs: list[Paragraph], source: str) -> int:
    """Store each SQuAD paragraph as a one-segment pseudo-video; unchanged ones are skipped.

    Returns how many paragraphs were (re)written.
    """
    written = 0
    for para in paragraphs:
        digest = hashlib.sha256(f"{para.title}|{para.text}".encode()).hexdigest()
        if store.source_hash(para.video_id) == digest:
            continue
        video = Video(
            para.video_id,
            title=para.title,
            course="squad",
            source_path=source,
            source_hash=digest,
            duration=SQUAD_SPAN[1],
        )
        store.replace_video(video, [SegmentDraft(*SQUAD_SPAN, para.text)])
        written += 1
    return written
