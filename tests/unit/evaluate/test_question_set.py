"""Validate the hand-written NURC-SP retrieval question set against the real transcripts.

Why: `tests/data/nurc_questions.jsonl` is the ground truth for retrieval metrics over the four
NURC-SP lectures. A mistyped timestamp, an answer that the cited passage does not support, or a
question copied word for word from the transcript would silently corrupt (or inflate) every
benchmark built on it, so each of those mistakes gets its own check here. No models are loaded.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.paths import NURC, QUESTIONS

TRANSCRIPTS = NURC / "transcripts"

VIDEO_IDS = ("SP_EF_124", "SP_EF_153", "SP_EF_377", "SP_EF_405")
TYPES = {"factual", "definition", "explanation", "paraphrase", "unanswerable"}
KEYS = {"id", "question", "answer", "evidence", "type", "label"}
ID_PATTERN = re.compile(r"^nurc-\d{3}$")

MIN_ANSWERABLE = 40
MIN_UNANSWERABLE = 6
MIN_PER_LECTURE = 10
MIN_SPAN_S = 4.0
MAX_SPAN_S = 60.0
COPY_NGRAM = 8
# Times jump back to ~0 where the second (finer) segmentation of the same speech starts.
PASS_RESTART_S = 30.0

# Frequent Portuguese function words of five letters or more: sharing one of these with a
# transcript line says nothing about whether the line supports the answer.
STOPWORDS = frozenset(
    {
        "porque",
        "entao",
        "quando",
        "sobre",
        "entre",
        "mesmo",
        "mesma",
        "outro",
        "outra",
        "outros",
        "outras",
        "muito",
        "muita",
        "muitos",
        "muitas",
        "ainda",
        "sempre",
        "coisa",
        "coisas",
        "assim",
        "depois",
        "antes",
        "apenas",
        "tambem",
        "nosso",
        "nossa",
        "nossos",
        "nossas",
        "aquele",
        "aquela",
        "aquilo",
        "aqueles",
        "aquelas",
        "deles",
        "delas",
        "dessa",
        "desse",
        "desta",
        "deste",
        "disso",
        "disto",
        "nesse",
        "nessa",
        "neste",
        "nesta",
        "essas",
        "esses",
        "estas",
        "estes",
        "todos",
        "todas",
        "seria",
        "estava",
        "foram",
        "tinha",
        "tinham",
        "havia",
        "existe",
        "porem",
        "fazer",
        "feito",
        "pelos",
        "pelas",
        "cerca",
    }
)


@dataclass(frozen=True)
class Line:
    """One transcript cue of the first segmentation pass."""

    start: float
    end: float
    text: str


def fold(text: str) -> str:
    """Lower-case and strip accents, so `não`/`nao` and `Cármen`/`carmen` compare equal."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def tokens(text: str) -> list[str]:
    """Word tokens as the transcript's `text` column writes them (hyphens dropped, not split)."""
    return re.findall(r"[a-z0-9]+", fold(text).replace("-", ""))


def content_words(text: str) -> set[str]:
    """Words of five letters or more that carry meaning (used to tie answers to cited lines)."""
    return {t for t in tokens(text) if len(t) >= 5 and t.isalpha() and t not in STOPWORDS}


def seconds(value: str) -> float:
    """Parse the corpus' decimal-comma seconds (`0,05869`)."""
    return float(value.strip().replace(",", "."))


def read_rows(video_id: str) -> list[Line]:
    """Every row of a lecture file, in file order (both segmentation passes and stray fragments)."""
    path = TRANSCRIPTS / f"sentences_{video_id}.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=";")
        return [Line(seconds(r["start_sec"]), seconds(r["end_sec"]), r["text"]) for r in reader]


def first_pass(rows: list[Line]) -> list[Line]:
    """The sentence-level segmentation: rows up to the first big jump back in time."""
    kept = rows[:1]
    for row in rows[1:]:
        if row.start < kept[-1].start - PASS_RESTART_S:
            break
        kept.append(row)
    return kept


@pytest.fixture(scope="module")
def all_rows() -> dict[str, list[Line]]:
    """All rows per lecture; fails (never skips) when the shared corpus is missing."""
    if not TRANSCRIPTS.is_dir():
        pytest.fail(
            f"Transcrições do NURC-SP não encontradas em {TRANSCRIPTS}. "
            "Coloque o corpus em ../shared/data/nurc-sp/transcripts (veja shared/data/README.md)."
        )
    return {video_id: read_rows(video_id) for video_id in VIDEO_IDS}


@pytest.fixture(scope="module")
def lectures(all_rows: dict[str, list[Line]]) -> dict[str, list[Line]]:
    """First-pass cues per lecture: the segmentation the evidence times refer to."""
    return {video_id: first_pass(rows) for video_id, rows in all_rows.items()}


@pytest.fixture(scope="module")
def items() -> list[dict[str, Any]]:
    """The question set, one JSON object per non-empty line."""
    assert QUESTIONS.is_file(), f"Arquivo de perguntas ausente: {QUESTIONS}"
    lines = QUESTIONS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def spans(items: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Every (question id, evidence span) pair, for per-span checks."""
    return [(item["id"], ev) for item in items for ev in item["evidence"]]


def supported(span: dict[str, Any], answer: str, lines: list[Line]) -> bool:
    """True when a cue overlapping the span shares a content word with the answer."""
    wanted = content_words(answer)
    overlapping = [ln for ln in lines if ln.start < span["end"] and ln.end > span["start"]]
    return any(wanted & content_words(ln.text) for ln in overlapping)


def test_first_pass_is_detected(all_rows: dict[str, list[Line]], lectures: dict[str, list[Line]]) -> None:
    """The pass split must leave the second segmentation out, or the range checks mean nothing."""
    for video_id, cues in lectures.items():
        assert 200 <= len(cues) < len(all_rows[video_id]) / 2, video_id
        assert all(a.start <= b.start + PASS_RESTART_S for a, b in itertools.pairwise(cues))


def test_schema(items: list[dict[str, Any]]) -> None:
    """Each object has exactly the agreed fields with the agreed types."""
    for item in items:
        assert set(item) == KEYS, item.get("id")
        assert ID_PATTERN.match(item["id"]), item["id"]
        assert isinstance(item["question"], str) and len(item["question"].split()) >= 3, item["id"]
        assert item["type"] in TYPES, item["id"]
        assert item["label"] is None, item["id"]
        assert item["answer"] is None or (isinstance(item["answer"], str) and item["answer"].strip())
        assert isinstance(item["evidence"], list), item["id"]
        for ev in item["evidence"]:
            assert set(ev) == {"video_id", "start", "end"}, item["id"]
            assert ev["video_id"] in VIDEO_IDS, item["id"]
            assert isinstance(ev["start"], int | float) and isinstance(ev["end"], int | float)


def test_ids_and_questions_are_unique(items: list[dict[str, Any]]) -> None:
    """Duplicate ids or questions would double-count in metrics."""
    ids = Counter(item["id"] for item in items)
    questions = Counter(" ".join(tokens(item["question"])) for item in items)
    assert [k for k, n in ids.items() if n > 1] == []
    assert [k for k, n in questions.items() if n > 1] == []


def test_answerability_is_consistent(items: list[dict[str, Any]]) -> None:
    """Unanswerable means no answer and no evidence; everything else needs both."""
    answerable = unanswerable = 0
    for item in items:
        if item["type"] == "unanswerable":
            assert item["answer"] is None and item["evidence"] == [], item["id"]
            unanswerable += 1
        else:
            assert item["answer"] is not None and item["evidence"], item["id"]
            answerable += 1
    assert answerable >= MIN_ANSWERABLE
    assert unanswerable >= MIN_UNANSWERABLE


def test_every_lecture_is_covered_from_start_to_end(
    items: list[dict[str, Any]], lectures: dict[str, list[Line]]
) -> None:
    """Each lecture gets enough questions, with evidence in its first, middle and last third."""
    for video_id, cues in lectures.items():
        duration = cues[-1].end
        starts = [ev["start"] for _, ev in spans(items) if ev["video_id"] == video_id]
        asked = {item["id"] for item in items if any(ev["video_id"] == video_id for ev in item["evidence"])}
        assert len(asked) >= MIN_PER_LECTURE, video_id
        thirds = {min(int(3 * s / duration), 2) for s in starts}
        assert thirds == {0, 1, 2}, video_id


def test_spans_lie_inside_the_lecture(items: list[dict[str, Any]], lectures: dict[str, list[Line]]) -> None:
    """Evidence must fall within the first pass and have a plausible length."""
    for qid, ev in spans(items):
        cues = lectures[ev["video_id"]]
        assert 0.0 <= ev["start"] < ev["end"] <= cues[-1].end + 0.5, qid
        assert MIN_SPAN_S <= ev["end"] - ev["start"] <= MAX_SPAN_S, (qid, ev)


def test_spans_support_the_answer(items: list[dict[str, Any]], lectures: dict[str, list[Line]]) -> None:
    """Catches mistyped times: the cited cues must share vocabulary with the reference answer."""
    answers = {item["id"]: item["answer"] for item in items}
    failures = [(qid, ev) for qid, ev in spans(items) if not supported(ev, answers[qid], lectures[ev["video_id"]])]
    assert failures == []


def test_support_check_rejects_shifted_spans(items: list[dict[str, Any]], lectures: dict[str, list[Line]]) -> None:
    """The support check must have teeth: at least two thirds of the spans moved ten
    minutes away must fail it (about three quarters do with the current set)."""
    answers = {item["id"]: item["answer"] for item in items}
    all_spans = spans(items)
    still_supported = 0
    for qid, ev in all_spans:
        duration = lectures[ev["video_id"]][-1].end
        offset = 600.0 if ev["end"] + 600.0 <= duration else -600.0
        moved = {"start": ev["start"] + offset, "end": ev["end"] + offset}
        still_supported += supported(moved, answers[qid], lectures[ev["video_id"]])
    assert still_supported < len(all_spans) / 3


def test_questions_do_not_copy_the_transcript(items: list[dict[str, Any]], all_rows: dict[str, list[Line]]) -> None:
    """Questions must paraphrase: no run of eight words shared verbatim with any lecture."""
    corpus: set[tuple[str, ...]] = set()
    for rows in all_rows.values():
        words = [w for row in rows for w in tokens(row.text)]
        corpus.update(zip(*(words[i:] for i in range(COPY_NGRAM)), strict=False))
    copied = []
    for item in items:
        words = tokens(item["question"])
        grams = set(zip(*(words[i:] for i in range(COPY_NGRAM)), strict=False))
        if grams & corpus:
            copied.append(item["id"])
    assert copied == []


def test_some_questions_are_in_english(items: list[dict[str, Any]]) -> None:
    """A few English questions exercise cross-lingual retrieval over Portuguese speech."""
    english_markers = {"what", "who", "how", "the", "does", "which", "why", "when"}
    english = [i["id"] for i in items if len(english_markers & set(tokens(i["question"]))) >= 2]
    assert len(english) >= 2
