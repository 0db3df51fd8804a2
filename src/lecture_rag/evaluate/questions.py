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

import codecs
import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lecture_rag.errors import LectureRagError
from lecture_rag.records import Evidence, Question, Video
from lecture_rag.store import SegmentDraft, Store
from lecture_rag.userfiles import parse_json, read_user_text

SQUAD_SPAN = (0.0, 1.0)


@dataclass(slots=True)
class Paragraph:
    """A SQuAD paragraph used as a one-segment pseudo-video."""

    video_id: str
    title: str
    text: str


_EXPECTED = "perguntas em JSON Lines ou um arquivo SQuAD"
_JSONL_FORMAT = (
    '{"id": ..., "question": "...", "answer": "..." | null, "evidence": [{"video_id": "...", "start": 0, '
    '"end": 0}], "type": "...", "label": "C"}'
)
_SQUAD_FORMAT = (
    '{"data": [{"title": "...", "paragraphs": [{"context": "...", "qas": [{"id": "...", "question": "...", '
    '"answers": [{"text": "..."}]}]}]}]}'
)


class _Bad(ValueError):
    """A value of a question file that cannot be used; the message says which and why (Portuguese)."""


def is_squad(path: Path) -> bool:
    """SQuAD files are one JSON object with ``data[].paragraphs`` (anything unreadable is not: see load_questions)."""
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    try:
        with path.open("rb") as handle:
            head = handle.read(2048)
    except OSError:
        return False
    utf16 = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    return _squad_head(head.decode("utf-16" if utf16 else "utf-8", errors="ignore"))


def _squad_head(text: str) -> bool:
    head = text[:2048].lstrip("\ufeff \t\r\n")
    return head.startswith("{") and '"data"' in head


def load_questions(path: Path) -> list[Question]:
    """Questions from a JSONL file or a SQuAD file, with clear errors per line.

    Encodings, folders, binary files and broken JSON are refused the way
    transcripts are (:func:`read_user_text`); every value is checked, so a
    ``null`` question or a numeric label is an error with its line, never a
    question "None" or a traceback later.
    """
    if not path.exists():
        raise LectureRagError(f"Arquivo de perguntas não encontrado: {path}")
    text = read_user_text(path, _EXPECTED)
    if path.suffix.lower() == ".json" and _squad_head(text):
        return _squad(path, text)[1]
    questions = list(_jsonl_questions(path, text))
    if not questions:
        raise LectureRagError(f"{path}: nenhuma pergunta encontrada (esperado JSON Lines ou SQuAD).")
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise LectureRagError(f"{path}: id de pergunta repetido: {dup!r}. Cada pergunta precisa de um id único.")
    return questions


def _jsonl_questions(path: Path, text: str) -> Iterator[Question]:
    # Lines end at "\n" only: str.splitlines would also cut at U+2028 and other separators JSON strings may hold.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield _question(parse_json(line), number)
        except json.JSONDecodeError as exc:
            raise LectureRagError(
                f"{path}, linha {number}: JSON malformado ({exc.msg}, coluna {exc.colno}). Cada linha deve ser "
                f"um objeto JSON completo: {_JSONL_FORMAT}"
            ) from None
        except ValueError as exc:  # a bad value, or absurd nesting
            raise LectureRagError(
                f"{path}, linha {number}: pergunta inválida ({exc}). Formato de cada linha: {_JSONL_FORMAT}"
            ) from None


def _kind(value: Any) -> str:
    """What a JSON value is, in the words of the messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"o número {value!r}" if len(repr(value)) < 40 else "um número"
    if isinstance(value, str):
        return "um texto"
    return "uma lista" if isinstance(value, list) else "um objeto"


def _text(value: Any, key: str, *, numbers: bool = False) -> str:
    """A text field; with ``numbers``, a JSON number is read as its text (ids, answers)."""
    if numbers and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise _Bad(f"o campo '{key}' deveria ser texto, mas é {_kind(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Bad(f"o campo '{key}' tem um caractere inválido (um escape \\u isolado, como \\ud800)") from None
    return value


def _question(obj: Any, number: int) -> Question:
    if not isinstance(obj, dict):
        raise _Bad(f"cada linha deve ser um objeto JSON, mas esta é {_kind(obj)}")
    if obj.get("question") is None:
        state = "está ausente" if "question" not in obj else "é null"
        raise _Bad(f"o campo 'question' {state}; escreva o texto da pergunta")
    text = _text(obj["question"], "question").strip()
    if not text:
        raise _Bad("o campo 'question' está vazio; escreva o texto da pergunta")
    label = obj.get("label")
    if label is not None and not isinstance(label, str):
        raise _Bad(
            f"o campo 'label' deveria ser texto (um código do esquema de rótulos, como \"C\"), mas é {_kind(label)}; "
            "escreva o rótulo entre aspas"
        )
    return Question(
        id=f"q{number}" if obj.get("id") is None else _text(obj["id"], "id", numbers=True),
        question=text,
        answer=None if obj.get("answer") is None else _text(obj["answer"], "answer", numbers=True),
        evidence=_evidence(obj.get("evidence")),
        type="" if obj.get("type") is None else _text(obj["type"], "type", numbers=True),
        label=None if label is None else _text(label, "label"),
    )


def _evidence(value: Any) -> list[Evidence]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Bad(
            f"o campo 'evidence' deveria ser uma lista de trechos {{video_id, start, end}}, mas é {_kind(value)}"
        )
    spans = []
    for n, item in enumerate(value, start=1):
        if not isinstance(item, dict):
            raise _Bad(f"evidência {n}: esperado um objeto {{video_id, start, end}}, mas é {_kind(item)}")
        if item.get("video_id") is None:
            raise _Bad(f"evidência {n}: falta o campo 'video_id'")
        video_id = _text(item["video_id"], "video_id", numbers=True).strip()
        start, end = _seconds(item, "start", n), _seconds(item, "end", n)
        if end < start:
            raise _Bad(f"evidência {n}: o fim ({end:g} s) vem antes do início ({start:g} s)")
        spans.append(Evidence(video_id, start, end))
    return spans


def _seconds(item: dict[str, Any], key: str, n: int) -> float:
    """A time of an evidence span: seconds, a number (or a text holding one), finite and not negative."""
    value = item.get(key)
    seconds = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = float(value.strip().replace(",", "."))
        except ValueError:
            seconds = None
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        shown = "está ausente" if key not in item else f"é {_kind(value)}"
        raise _Bad(f"evidência {n}: o campo '{key}' deveria ser um número de segundos (0 ou mais), mas {shown}")
    return seconds


def load_squad(path: Path) -> tuple[list[Paragraph], list[Question]]:
    """Paragraphs and questions of a SQuAD-format file (paragraph = relevant unit)."""
    return _squad(path, read_user_text(path, _EXPECTED))


def _squad(path: Path, text: str) -> tuple[list[Paragraph], list[Question]]:
    try:
        data = parse_json(text)
    except json.JSONDecodeError as exc:
        raise LectureRagError(
            f"{path}, linha {exc.lineno}, coluna {exc.colno}: JSON malformado ({exc.msg}). Corrija o arquivo SQuAD "
            "(ou baixe-o de novo) e tente outra vez."
        ) from None
    except ValueError as exc:
        raise LectureRagError(f"{path}: JSON inválido: {exc}. Confira se é mesmo um arquivo SQuAD.") from None
    try:
        paragraphs, questions = _squad_items(data)
    except _Bad as exc:
        raise LectureRagError(f"{path}: arquivo SQuAD inválido: {exc}. Formato: {_SQUAD_FORMAT}") from None
    if not paragraphs:
        raise LectureRagError(f"{path}: arquivo SQuAD sem parágrafos.")
    return paragraphs, questions


def _listed(container: dict[str, Any], key: str) -> list[Any]:
    """A list field of a SQuAD object (absent: empty)."""
    value = container.get(key, [])
    if not isinstance(value, list):
        raise _Bad(f"o campo '{key}' deveria ser uma lista, mas é {_kind(value)}")
    return value


def _squad_items(data: Any) -> tuple[list[Paragraph], list[Question]]:
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise _Bad("o campo 'data' deveria ser uma lista de artigos")
    paragraphs: list[Paragraph] = []
    questions: list[Question] = []
    for a, article in enumerate(data["data"], start=1):
        with _place(f"artigo {a}"):
            if not isinstance(article, dict):
                raise _Bad(f"esperado um objeto com 'title' e 'paragraphs', mas é {_kind(article)}")
            title = "" if article.get("title") is None else _text(article["title"], "title", numbers=True)
            for p, para in enumerate(_listed(article, "paragraphs"), start=1):
                with _place(f"artigo {a}, parágrafo {p}"):
                    if not isinstance(para, dict):
                        raise _Bad(f"esperado um objeto com 'context' e 'qas', mas é {_kind(para)}")
                    if "context" not in para:
                        raise _Bad("falta o campo 'context' (o texto do parágrafo)")
                    vid = f"squad-{len(paragraphs):05d}"
                    paragraphs.append(Paragraph(vid, title, _text(para["context"], "context")))
                    for q, qa in enumerate(_listed(para, "qas"), start=1):
                        with _place(f"artigo {a}, parágrafo {p}, pergunta {q}"):
                            questions.append(_squad_question(qa, vid, title, len(questions)))
    return paragraphs, questions


@contextmanager
def _place(where: str) -> Iterator[None]:
    """Prefix a :class:`_Bad` raised inside with where it happened (once: the innermost place wins)."""
    try:
        yield
    except _Bad as exc:
        message = str(exc)
        raise _Bad(message if message.startswith("artigo ") else f"{where}: {message}") from None


def _squad_question(qa: Any, vid: str, title: str, count: int) -> Question:
    if not isinstance(qa, dict):
        raise _Bad(f"esperado um objeto com 'question' e 'answers', mas é {_kind(qa)}")
    if qa.get("question") is None:
        raise _Bad("falta o campo 'question'" if "question" not in qa else "o campo 'question' é null")
    answers = _listed(qa, "answers")
    if answers and not (isinstance(answers[0], dict) and "text" in answers[0]):
        raise _Bad("cada resposta em 'answers' deveria ser um objeto com o campo 'text'")
    return Question(
        id=f"{vid}-{count}" if qa.get("id") is None else _text(qa["id"], "id", numbers=True),
        question=_text(qa["question"], "question").strip(),
        answer=_text(answers[0]["text"], "text", numbers=True) if answers else None,
        evidence=[Evidence(vid, *SQUAD_SPAN)],
        type=title,
    )


def evidence_warning(questions: Sequence[Question], store: Store) -> str | None:
    """One line when evidence names videos the store does not hold (those spans can never be found), else None."""
    known = {video.video_id for video in store.list_videos()}
    missing = sorted({span.video_id for q in questions for span in q.evidence} - known)
    if not missing:
        return None
    absent = set(missing)
    affected = sum(1 for q in questions if any(span.video_id in absent for span in q.evidence))
    shown = ", ".join(" ".join(vid.split()) for vid in missing[:10])
    more = f" e mais {len(missing) - 10}" if len(missing) > 10 else ""
    return (
        f"Aviso: a evidência de {affected} pergunta(s) cita vídeo(s) que não estão no acervo: {shown}{more}. "
        "Esses trechos nunca são encontrados e contam como erro nas métricas; confira os video_id do arquivo "
        "de perguntas ou ingira esses vídeos."
    )


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
