"""Hostile transcripts: absurd JSON nesting, files cut short, and what the readers say about them.

Every hostile file ends in an :class:`IngestError` that names the file (and the line, where
there is one) or in the cues of its intact part; never in a traceback, never in a cue number or
a half timing line read as speech, never in a silently dropped cue.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lecture_rag.errors import IngestError, LectureRagError
from lecture_rag.ingest.readers import JSONNestingError, parse_json, read_cues, read_user_text
from lecture_rag.records import Cue
from tests.support.paths import FIXTURES

CAPTIONS = FIXTURES / "captions"
DEEP = 100_000


def _error(path: Path) -> str:
    with pytest.raises(IngestError) as info:
        list(read_cues(path))
    return str(info.value)


def _write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


# --------------------------------------------------------------------------- JSON nesting


def test_parse_json_turns_absurd_nesting_into_a_value_error() -> None:
    with pytest.raises(JSONNestingError) as info:
        parse_json("[" * DEEP + "]" * DEEP)
    assert isinstance(info.value, ValueError) and "aninhad" in str(info.value)
    assert parse_json('{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("lista.json3", '{"events": ' + "[" * DEEP + "]" * DEEP + "}"),
        ("segmentos.json", '{"segments": ' + "[" * DEEP + "]" * DEEP + "}"),
        ("objetos.json", '{"segments": [{"start": 0, "end": 1, "text": ' + '{"a": ' * DEEP + "1" + "}" * DEEP + "}]}"),
        (
            "linha.jsonl",
            '{"start": 0, "end": 1, "text": "oi"}\n{"start": 1, "end": 2, "text": ' + "[" * DEEP + "]" * DEEP + "}\n",
        ),
    ],
)
def test_deeply_nested_json_transcripts_are_refused(tmp_path: Path, name: str, text: str) -> None:
    """Each of these used to end in a RecursionError traceback."""
    message = _error(_write(tmp_path, name, text))
    assert message.startswith(name) and "aninhad" in message
    if name.endswith(".jsonl"):
        assert "linha 2" in message


@pytest.mark.parametrize(
    "text",
    ["[" * DEEP + "]" * DEEP, '{"a": ' * DEEP + "1" + "}" * DEEP],
)
def test_nesting_without_any_transcript_key_is_refused(tmp_path: Path, text: str) -> None:
    message = _error(_write(tmp_path, "nada.json", text))
    assert message.startswith("nada.json:")


def test_nested_values_are_shown_short_in_messages(tmp_path: Path) -> None:
    """A value that parses but is nonsense is quoted briefly, never printed whole (or recursively)."""
    deep = "[" * 400 + "]" * 400
    path = _write(tmp_path, "valor.json", '{"segments": [{"start": ' + deep + ', "end": 1, "text": "oi"}]}')
    message = _error(path)
    assert "valor.json, segmento 1" in message and "'start'" in message and len(message) < 400


def test_json3_text_that_is_not_text_is_refused(tmp_path: Path) -> None:
    doc = {"events": [{"tStartMs": 0, "dDurationMs": 900, "segs": [{"utf8": [[["oi"]]]}]}]}
    message = _error(_write(tmp_path, "segs.json3", json.dumps(doc)))
    assert "segs.json3, evento 1" in message and "utf8" in message


def test_json_text_with_a_lone_surrogate_is_refused(tmp_path: Path) -> None:
    """``\\ud800`` parses as a string no database or terminal can encode."""
    path = _write(tmp_path, "sur.jsonl", '{"start": 0, "end": 1, "text": "ok \\ud800 fim"}\n')
    message = _error(path)
    assert "sur.jsonl, linha 1" in message and "inválid" in message


# --------------------------------------------------------------------------- files cut short


SRT = (CAPTIONS / "aula_utf8.srt").read_text(encoding="utf-8")
VTT = (CAPTIONS / "aula_manual_pt.vtt").read_text(encoding="utf-8")


def _cut_after(text: str, marker: str, extra: int = 0) -> str:
    return text[: text.index(marker) + len(marker) + extra]


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        # cue number and the start of its timing line: they used to become speech ("... 2 00:00:05,0")
        ("numero_e_hora.srt", _cut_after(SRT, "\n\n2\n00:00:05,0"), 7),
        ("numero_e_zero.srt", _cut_after(SRT, "\n\n2\n0"), 7),
        # only the number of the next cue
        ("so_numero.srt", _cut_after(SRT, "\n\n3\n"), 11),
        ("hora_incompleta.srt", _cut_after(SRT, "\n\n2\n00:00:05,000 --> 00:0"), 7),
        # a timing line without its arrow used to be dropped silently
        ("hora_sem_seta.vtt", _cut_after(VTT, "\n\n00:00:10.000 "), 28),
        ("hora_pela_metade.vtt", _cut_after(VTT, "\n\n00:00:10.0"), 28),
        ("identificador.vtt", VTT[: VTT.index("intro\n") + len("intro\n00:0")], 13),
        ("hora_incompleta.vtt", _cut_after(VTT, "\n\n00:00:04.600 --> 00"), 17),
    ],
)
def test_a_file_cut_in_the_middle_of_a_cue_is_refused(tmp_path: Path, name: str, text: str, line: int) -> None:
    message = _error(_write(tmp_path, name, text))
    assert message.startswith(f"{name}, linha {line}"), message
    assert "cortado" in message and "de novo" in message


def test_a_file_cut_in_the_middle_of_a_character_is_refused(tmp_path: Path) -> None:
    """A UTF-8 file cut inside 'ç' used to be read whole as Windows-1252: 'aÃ§Ã£o' everywhere."""
    data = "1\n00:00:01,000 --> 00:00:03,000\nação e reação\n\n2\n00:00:04,000 --> 00:00:05,000\nfim da aç".encode()
    message = _error(_write(tmp_path, "meio.srt", data + "ã".encode()[:1]))
    assert message.startswith("meio.srt") and "cortado" in message


def test_an_srt_cue_whose_timing_lost_its_arrow_is_refused_mid_file(tmp_path: Path) -> None:
    """A cue number and a broken timing used to be glued to the previous cue as speech."""
    text = "1\n00:00:01,000 --> 00:00:02,000\num\n\n2\n00:00:03,000\ndois\n\n3\n00:00:04,000 --> 00:00:05,000\ntrês\n"
    message = _error(_write(tmp_path, "seta.srt", text))
    assert message.startswith("seta.srt, linha 6") and "horário malformado" in message


def test_a_vtt_timing_without_arrow_is_refused_mid_file(tmp_path: Path) -> None:
    text = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\num\n\n00:00:03.000\ndois\n\n00:00:04.000 --> 00:00:05.000\ntrês\n"
    message = _error(_write(tmp_path, "seta.vtt", text))
    assert message.startswith("seta.vtt, linha 6") and "horário malformado" in message


def test_intact_ends_are_still_read(tmp_path: Path) -> None:
    """What is not a truncation stays accepted: an empty last cue, text that is a number, no final newline."""
    empty_last = "1\n00:00:01,000 --> 00:00:02,000\num\n\n2\n00:00:03,000 --> 00:00:04,000\n"
    assert list(read_cues(_write(tmp_path, "vazia.srt", empty_last))) == [Cue(1.0, 2.0, "um")]
    year = "1\n00:00:01,000 --> 00:00:02,000\nem\n1930"
    assert list(read_cues(_write(tmp_path, "ano.srt", year))) == [Cue(1.0, 2.0, "em 1930")]
    clock = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nàs\n10:30\n"
    assert list(read_cues(_write(tmp_path, "hora.vtt", clock))) == [Cue(1.0, 2.0, "às 10:30")]


def _words_prefix(text: str, full: str) -> bool:
    """``text`` is ``full`` cut short (its last word may be cut, or a half tag left over)."""
    text = re.sub(r"<[^>]*$", "", text).strip()  # a tag cut in half is not markup any more
    kept = text.rsplit(" ", 1)[0] if " " in text else ""
    return full.startswith(text) or full.startswith(kept)


@pytest.mark.parametrize("name", ["aula_utf8.srt", "aula_cp1252.srt", "aula_manual_pt.vtt"])
def test_every_truncation_is_refused_or_reads_only_intact_speech(tmp_path: Path, name: str) -> None:
    """Cut the fixture at every byte: either a clear refusal, or the intact cues and a prefix of the cut one."""
    data = (CAPTIONS / name).read_bytes()
    full = list(read_cues(CAPTIONS / name))
    path = tmp_path / name
    outcomes = {"refused": 0, "read": 0}
    for cut in range(1, len(data)):
        path.write_bytes(data[:cut])
        try:
            cues = list(read_cues(path))
        except IngestError as exc:
            assert str(exc).startswith(name), (cut, str(exc))
            outcomes["refused"] += 1
            continue
        outcomes["read"] += 1
        assert cues, cut
        assert cues[:-1] == full[: len(cues) - 1], (cut, cues)
        last, whole = cues[-1], full[len(cues) - 1]
        assert (last.start, last.end) == (whole.start, whole.end), (cut, last, whole)
        assert _words_prefix(last.text, whole.text), (cut, last.text, whole.text)
        assert not re.search(r"\d+:\d", last.text) or re.search(r"\d+:\d", whole.text), (cut, last.text)
    assert outcomes["refused"] > 0 and outcomes["read"] > 0


# --------------------------------------------------------------------------- damaged UTF-8


def test_utf8_with_a_few_invalid_bytes_is_refused_not_read_as_mojibake(tmp_path: Path) -> None:
    """Such files used to be read whole as cp1252 (or a detector's guess): 'aÃ§Ã£o' in every cue."""
    cue = "{n}\n00:00:{n:02d},000 --> 00:00:{n:02d},500\nação número {n}\n\n"
    text = "".join(cue.format(n=n) for n in range(1, 40)).encode()
    head = _write(tmp_path, "cabeca.srt", text.replace("número 3\n".encode(), "n\xfamero 3\n".encode("latin-1")))
    message = _error(head)
    assert message.startswith("cabeca.srt, linha 11") and "UTF-8" in message and "corrompido" in message
    # the damage beyond the first 64 KiB, which only the whole-file check sees
    long_text = "".join(cue.format(n=n % 60) for n in range(1, 3000)).encode()
    far = _write(tmp_path, "longe.srt", long_text + "99\n00:00:01,000 --> 00:00:02,000\nfim\xe9\n".encode("latin-1"))
    assert "corrompido" in _error(far)


def test_latin1_after_a_long_ascii_start_is_still_read_as_cp1252(tmp_path: Path) -> None:
    ascii_part = "".join(f"{n}\n00:00:01,000 --> 00:00:02,000\nfala {n}\n\n" for n in range(1, 3000))
    path = _write(tmp_path, "latin.srt", (ascii_part + "3000\n00:00:03,000 --> 00:00:04,000\nação\n").encode("cp1252"))
    assert list(read_cues(path))[-1].text == "ação"


# --------------------------------------------------------------------------- files people write (questions, labels)


@pytest.mark.parametrize(
    "data",
    ["ação".encode(), "\ufeffação".encode(), "ação".encode("utf-16"), "ação".encode("cp1252")],
)
def test_read_user_text_decodes_like_transcripts(tmp_path: Path, data: bytes) -> None:
    assert read_user_text(_write(tmp_path, "f.txt", data), "texto") == "ação"


def test_read_user_text_refuses_what_is_not_a_text_file(tmp_path: Path) -> None:
    for path, expected in (
        (_write(tmp_path, "bin.csv", bytes(range(256)) * 4), "binário"),
        (_write(tmp_path, "controle.csv", b"qid,label\n" + b"\x01\x02\x03\x04" * 50), "binário"),
        (tmp_path / "nao-existe.csv", "não encontrado"),
    ):
        with pytest.raises(LectureRagError) as info:
            read_user_text(path, "anotações em CSV")
        assert str(info.value).startswith(str(path)) and expected in str(info.value)
    folder = tmp_path / "pasta.csv"
    folder.mkdir()
    with pytest.raises(LectureRagError, match=r"é uma pasta.*anotações em CSV"):
        read_user_text(folder, "anotações em CSV")
