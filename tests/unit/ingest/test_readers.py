"""Transcript readers: every format, encoding and bad input, on fixtures and the real NURC-SP files."""

from __future__ import annotations

import csv
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lecture_rag.errors import IngestError
from lecture_rag.ingest.readers import (
    FORMATS,
    SUPPORTED_SUFFIXES,
    clean_text,
    detect_format,
    nurc_video_id,
    read_cues,
)
from lecture_rag.records import Cue
from tests.support.paths import FIXTURES, NURC

CAPTIONS = FIXTURES / "captions"

# The twelve lines spoken in youtube_auto_pt.vtt (and the first six in youtube_asr_pt.json3).
SPOKEN = [
    "olá pessoal sejam bem-vindos a mais uma aula",
    "de introdução à física hoje nós vamos falar",
    "sobre a segunda lei de newton que relaciona",
    "a força resultante com a aceleração de um corpo",
    "então vamos lembrar primeiro o que é força",
    "força é uma grandeza vetorial ou seja ela tem",
    "módulo direção e sentido e a unidade no",
    "sistema internacional é o newton que é igual",
    "a um quilograma vezes metro por segundo ao",
    "quadrado agora se a gente aplicar a mesma força",
    "em dois corpos de massas diferentes o corpo",
    "de menor massa vai ter uma aceleração maior",
]

SRT_TEXTS = [
    "Boa tarde a todos. Hoje a aula é sobre o cinema brasileiro.",
    "A produção da Cinédia começou em 1930",
    "Ação, você, é — “atenção” à história do som sincronizado & das chanchadas.",
    "Não há questões de múltipla escolha; só reflexão crítica sobre a época.",
]


def nurc(*parts: str) -> Path:
    """A NURC-SP file; missing shared data is a failure, never a skip."""
    path = NURC.joinpath(*parts)
    assert path.exists(), f"test data missing: {path} (../shared/data must be beside the repo)"
    return path


def cues_of(path: Path, **kwargs: str) -> list[Cue]:
    return list(read_cues(path, **kwargs))


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def ingest_error(path: Path, **kwargs: str) -> str:
    """The message of the IngestError raised while reading ``path`` fully."""
    with pytest.raises(IngestError) as info:
        list(read_cues(path, **kwargs))
    return str(info.value)


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("youtube_auto_pt.vtt", "vtt"),
        ("aula_manual_pt.vtt", "vtt"),
        ("aula_utf8.srt", "srt"),
        ("aula_utf8_bom.srt", "srt"),
        ("aula_cp1252.srt", "srt"),
        ("youtube_asr_pt.json3", "json3"),
        ("whisper_openai_pt.json", "whisper_json"),
        ("faster_whisper_segments_pt.json", "whisper_json"),
        ("aula_pt.jsonl", "jsonl"),
    ],
)
def test_detect_format_of_fixtures(name: str, fmt: str) -> None:
    assert detect_format(CAPTIONS / name) == fmt
    assert fmt in FORMATS


def test_detect_format_of_nurc_files() -> None:
    assert detect_format(nurc("transcripts", "sentences_SP_EF_405.csv")) == "nurc_csv"
    assert detect_format(nurc("asr", "SP_EF_405_asr_wav2vec2-xls-r-1b.csv")) == "nurc_csv"


def test_supported_suffixes_cover_the_formats() -> None:
    assert {".vtt", ".srt", ".json", ".jsonl", ".csv"} <= SUPPORTED_SUFFIXES
    assert all(suffix.startswith(".") and suffix == suffix.lower() for suffix in SUPPORTED_SUFFIXES)


def test_content_decides_between_caption_formats(tmp_path: Path) -> None:
    vtt_named_srt = write(tmp_path, "aula.srt", "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nolá\n")
    assert detect_format(vtt_named_srt) == "vtt"
    assert cues_of(vtt_named_srt) == [Cue(1.0, 2.0, "olá")]
    jsonl_named_json = write(
        tmp_path, "aula.json", '{"start": 1, "end": 2, "text": "um"}\n{"start": 2, "end": 3, "text": "dois"}\n'
    )
    assert detect_format(jsonl_named_json) == "jsonl"


def test_whisper_json_with_segments_key_far_from_the_start(tmp_path: Path) -> None:
    # openai-whisper writes the whole transcript as "text" before "segments".
    long_text = "palavra " * 20_000
    doc = {"text": long_text, "segments": [{"id": 0, "start": 0.5, "end": 2.0, "text": " Olá, turma."}]}
    path = write(tmp_path, "longa.json", json.dumps(doc))
    assert path.stat().st_size > 128 * 1024
    assert detect_format(path) == "whisper_json"
    assert cues_of(path) == [Cue(0.5, 2.0, "Olá, turma.")]


def test_unsupported_suffix_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "notas.txt", "00:00:01,000 --> 00:00:02,000\nolá\n")
    message = ingest_error(path)
    assert "notas.txt" in message and ".txt" in message and "WebVTT" in message


def test_unrecognised_content_lists_supported_formats(tmp_path: Path) -> None:
    path = write(tmp_path, "planilha.csv", "nome,nota\nana,10\n")
    with pytest.raises(IngestError) as info:
        detect_format(path)
    message = str(info.value)
    assert "planilha.csv" in message and "não é uma transcrição reconhecida" in message
    for name in ("WebVTT", "SubRip", "json3", "Whisper", "JSONL", "NURC"):
        assert name in message


def test_binary_content_is_refused_eagerly(tmp_path: Path) -> None:
    path = tmp_path / "video.vtt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 50)
    with pytest.raises(IngestError) as info:
        read_cues(path)  # no iteration needed: the check is eager
    assert "video.vtt" in str(info.value) and "binário" in str(info.value)


def test_binary_without_nul_bytes_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lixo.srt"
    path.write_bytes(bytes(b for b in range(1, 256) if b not in b"\n\r") * 100)
    assert "binário" in ingest_error(path)


# --------------------------------------------------------------------------- WebVTT


def test_youtube_rolling_auto_captions_keep_each_word_once() -> None:
    path = CAPTIONS / "youtube_auto_pt.vtt"
    raw_cues = path.read_text(encoding="utf-8").count("-->")
    assert raw_cues >= 20  # the fixture has the real shape: rolling cues plus 10 ms transitions
    cues = cues_of(path)
    assert " ".join(cue.text for cue in cues) == " ".join(SPOKEN)
    assert [cue.text for cue in cues] == SPOKEN
    assert cues[0].start == 0.0 and cues[0].end == pytest.approx(3.11)
    assert cues[1].start == pytest.approx(3.12) and cues[1].end == pytest.approx(6.32)
    for before, after in itertools.pairwise(cues):
        assert before.start < before.end <= after.start


def test_rolling_line_starting_with_inline_timing_uses_it(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "rolando.vtt",
        (
            "WEBVTT\nKind: captions\nLanguage: pt\n\n"
            "00:00:01.000 --> 00:00:04.000 align:start position:0%\n \n"
            "bom<00:00:01.400><c> dia</c><00:00:01.900><c> turma</c>\n\n"
            "00:00:04.000 --> 00:00:04.010 align:start position:0%\nbom dia turma\n \n\n"
            "00:00:04.010 --> 00:00:08.000 align:start position:0%\nbom dia turma\n"
            "<00:00:05.250><c>hoje</c><00:00:05.600><c> tem</c><00:00:06.000><c> prova</c>\n"
        ),
    )
    assert cues_of(path) == [Cue(1.0, 4.0, "bom dia turma"), Cue(5.25, 8.0, "hoje tem prova")]


def test_manual_vtt_with_styles_notes_voices_and_entities() -> None:
    cues = cues_of(CAPTIONS / "aula_manual_pt.vtt")
    assert cues == [
        Cue(1.0, 4.5, "Então nós vamos começar pela Pré-História, exatamente pelo período do Paleolítico."),
        Cue(4.6, 8.25, "A arte & o rito: Lascaux e Altamira"),
        # Not a rolling file: a word said twice in a row is speech, not a caption artefact.
        Cue(8.4, 8.9, "sim"),
        Cue(9.0, 9.6, "sim"),
        Cue(10.0, 14.0, "a expressão <b> aparece no texto e 2 < 3 continua"),
    ]


def test_vtt_with_bom_crlf_and_cue_right_after_header(tmp_path: Path) -> None:
    path = tmp_path / "bom.vtt"
    path.write_bytes(
        b"\xef\xbb\xbfWEBVTT\r\n00:00:01.000 --> 00:00:02.000\r\nsa\xc3\xbade\r\n\r\n"
        b"00:00:02.000 --> 00:00:03.500\r\ne educa\xc3\xa7\xc3\xa3o\r\n"
    )
    assert cues_of(path) == [Cue(1.0, 2.0, "saúde"), Cue(2.0, 3.5, "e educação")]


def test_vtt_header_without_cues_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "vazio.vtt", "WEBVTT\nKind: captions\nLanguage: pt\n\n")
    message = ingest_error(path)
    assert "vazio.vtt" in message and "nenhuma legenda" in message


def test_vtt_malformed_timestamp_names_the_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "ruim.vtt",
        ("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nprimeira\n\n00:00:03,000 --> 00:00:04,000\nsegunda\n"),
    )
    message = ingest_error(path)
    assert "ruim.vtt, linha 6" in message and "horário malformado" in message
    assert "00:00:03,000" in message and "HH:MM:SS.mmm" in message


def test_vtt_mistyped_arrow_is_not_silently_dropped(tmp_path: Path) -> None:
    path = write(tmp_path, "seta.vtt", "WEBVTT\n\n00:00:01.000 -> 00:00:02.000\nfala perdida\n")
    message = ingest_error(path)
    assert "seta.vtt, linha 3" in message and "horário malformado" in message


def test_vtt_negative_time(tmp_path: Path) -> None:
    path = write(tmp_path, "neg.vtt", "WEBVTT\n\n-00:00:01.000 --> 00:00:02.000\nantes do início\n")
    message = ingest_error(path)
    assert "neg.vtt, linha 3" in message and "negativo" in message


def test_vtt_end_before_start(tmp_path: Path) -> None:
    path = write(tmp_path, "invertido.vtt", "WEBVTT\n\n00:00:05.000 --> 00:00:02.000\ntexto\n")
    message = ingest_error(path)
    assert "invertido.vtt, linha 3" in message and "vem antes do início" in message


def test_vtt_absurd_time(tmp_path: Path) -> None:
    path = write(tmp_path, "longo.vtt", "WEBVTT\n\n72:00:00.000 --> 72:00:01.000\ntexto\n")
    message = ingest_error(path)
    assert "longo.vtt, linha 3" in message and "48 horas" in message


# --------------------------------------------------------------------------- SRT and encodings


@pytest.mark.parametrize("name", ["aula_utf8.srt", "aula_utf8_bom.srt", "aula_cp1252.srt"])
def test_srt_in_every_encoding_reads_the_same(name: str) -> None:
    cues = cues_of(CAPTIONS / name)
    assert [cue.text for cue in cues] == SRT_TEXTS
    assert [(cue.start, cue.end) for cue in cues] == [(1.2, 4.8), (5.0, 8.35), (8.5, 12.0), (12.1, 15.9)]


def test_cp1252_fixture_is_really_not_utf8() -> None:
    raw = (CAPTIONS / "aula_cp1252.srt").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert "ação, você, é".encode("cp1252") in raw.lower()


def test_cp1252_accent_after_a_long_ascii_start(tmp_path: Path) -> None:
    # The head (first 64 KiB) is pure ASCII; the encoding must still be decided on the whole file.
    blocks = [f"{i}\n00:00:{i % 60:02d},000 --> 00:00:{i % 60:02d},500\nfala numero {i}\n" for i in range(1, 3000)]
    blocks.append("3000\n00:01:00,000 --> 00:01:01,000\nA ação começa: você é o próximo.\n")
    path = write(tmp_path, "tardio.srt", "\n".join(blocks), encoding="cp1252")
    assert path.stat().st_size > 70_000
    cues = cues_of(path)
    assert len(cues) == 3000
    assert cues[-1].text == "A ação começa: você é o próximo."


def test_utf16_with_bom(tmp_path: Path) -> None:
    path = write(tmp_path, "utf16.srt", "1\n00:00:01,000 --> 00:00:02,000\nAção e reação\n", encoding="utf-16")
    assert cues_of(path) == [Cue(1.0, 2.0, "Ação e reação")]


def test_srt_markup_is_stripped_but_words_kept(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "tags.srt",
        (
            '1\n00:00:01,000 --> 00:00:03,000\n{\\an8}<font color="#ffff00">Ano de</font>\n<b>1930</b>\n\n'
            "2\n00:00:03,000 --> 00:00:05,000 X1:100 X2:200 Y1:10 Y2:20\n<i>P&amp;D</i> na USP\n"
        ),
    )
    assert cues_of(path) == [Cue(1.0, 3.0, "Ano de 1930"), Cue(3.0, 5.0, "P&D na USP")]


def test_srt_quirks_blank_line_in_text_index_alone_and_out_of_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "torto.srt",
        (
            "2\n00:00:05,000 --> 00:00:06,000\nsegunda fala\n\ncontinua depois da linha em branco\n\n"
            "1\n\n00:00:01,000 --> 00:00:02,000\nprimeira fala\n\n"
            "00:00:07,000 --> 00:00:08,000\nsem número\n\n\n"
        ),
    )
    # File order is kept: sorting is the segmenter's job.
    assert cues_of(path) == [
        Cue(5.0, 6.0, "segunda fala continua depois da linha em branco"),
        Cue(1.0, 2.0, "primeira fala"),
        Cue(7.0, 8.0, "sem número"),
    ]


def test_srt_empty_cue_is_skipped(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "lacuna.srt",
        (
            "1\n00:00:01,000 --> 00:00:02,000\n\n2\n00:00:03,000 --> 00:00:04,000\n<i> </i>\n\n"
            "3\n00:00:05,000 --> 00:00:06,000\nfala\n"
        ),
    )
    assert cues_of(path) == [Cue(5.0, 6.0, "fala")]


@pytest.mark.parametrize(
    ("timing", "expected"),
    [
        ("00:00:01,000 --> 00:00:0x,000", "horário malformado"),
        ("00:61:00,000 --> 00:62:00,000", "horário malformado"),
        ("00:00:01,000 -> 00:00:02,000", "horário malformado"),
        ("-00:00:01,000 --> 00:00:02,000", "negativo"),
        ("00:00:09,000 --> 00:00:08,000", "vem antes do início"),
        ("49:00:00,000 --> 49:00:01,000", "48 horas"),
    ],
)
def test_srt_bad_timings(tmp_path: Path, timing: str, expected: str) -> None:
    path = write(tmp_path, "erro.srt", f"1\n00:00:00,000 --> 00:00:01,000\nok\n\n2\n{timing}\ntexto\n")
    message = ingest_error(path)
    assert "erro.srt" in message and "linha 6" in message  # the timing line of the second cue
    assert expected in message


def test_srt_starting_with_plain_text_is_not_recognised(tmp_path: Path) -> None:
    path = write(tmp_path, "lixo.srt", "Legendas da aula 3\n\n1\n00:00:00,000 --> 00:00:01,000\nok\n")
    message = ingest_error(path)
    assert "lixo.srt" in message and "não é uma transcrição reconhecida" in message


@pytest.mark.parametrize("content", [b"", b"   \n\n\t\n", b"\xef\xbb\xbf\n"])
def test_empty_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "aula.srt"
    path.write_bytes(content)
    message = ingest_error(path)
    assert "aula.srt" in message and "vazio" in message


# --------------------------------------------------------------------------- JSON formats


def test_youtube_json3() -> None:
    cues = cues_of(CAPTIONS / "youtube_asr_pt.json3")
    assert [cue.text for cue in cues] == SPOKEN[:6]
    assert cues[0].start == pytest.approx(0.12)
    # ASR events stay on screen while the next line is spoken; ends are clipped to the next start.
    for before, after in itertools.pairwise(cues):
        assert before.end == pytest.approx(after.start)
    assert cues[-1].end == pytest.approx(16.12 + 3.5 + 2.8)


def test_openai_whisper_json() -> None:
    assert cues_of(CAPTIONS / "whisper_openai_pt.json") == [
        Cue(0.0, 6.0, "Então nós vamos começar pela Pré-História."),
        Cue(6.0, 9.04, "A arte no período Paleolítico."),
        Cue(10.02, 15.39, "O Paleolítico é o período da pedra lascada."),
    ]


def test_faster_whisper_segment_list() -> None:
    assert cues_of(CAPTIONS / "faster_whisper_segments_pt.json") == [
        Cue(0.0, 3.52, "Boa tarde, turma."),
        Cue(3.52, 7.9, "Hoje vamos falar de testes psicológicos."),
    ]


def test_malformed_json_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "cortado.json", '{"text": "oi",\n "segments": [{"start": 0, "end": 1, "text": "oi"}\n')
    message = ingest_error(path)
    assert "cortado.json, linha 3" in message and "JSON malformado" in message


def test_json3_bad_event_time(tmp_path: Path) -> None:
    doc = {"wireMagic": "pb3", "events": [{"tStartMs": "zero", "dDurationMs": 10, "segs": [{"utf8": "oi"}]}]}
    message = ingest_error(write(tmp_path, "ev.json3", json.dumps(doc)))
    assert "ev.json3, evento 1" in message and "tStartMs" in message


def test_whisper_segment_missing_keys(tmp_path: Path) -> None:
    doc = {"segments": [{"start": 0.0, "end": 1.0, "text": "oi"}, {"start": 1.0, "text": "sem fim"}]}
    message = ingest_error(write(tmp_path, "w.json", json.dumps(doc)))
    assert "w.json, segmento 2" in message and "end" in message


def test_huge_json_is_refused_with_jsonl_advice(tmp_path: Path) -> None:
    path = tmp_path / "enorme.json"
    with path.open("wb") as handle:  # sparse file: the size is real, the disk use is not
        handle.write(b'{"segments": [{"start": 0, "end": 1, "text": "oi"}' + b" " * 70_000)
        handle.seek(101 * 1024 * 1024)
        handle.write(b"]}")
    message = ingest_error(path)
    assert "enorme.json" in message and "grande demais" in message and "JSONL" in message


# --------------------------------------------------------------------------- JSONL


def test_jsonl_fixture_skips_blank_lines_and_empty_text() -> None:
    assert cues_of(CAPTIONS / "aula_pt.jsonl") == [
        Cue(0.0, 4.2, "Bom dia, hoje a aula é sobre testes psicológicos."),
        Cue(4.2, 9.75, "Primeiro: o que é validade de um teste?"),
        Cue(12.0, 15.5, "Validade é medir aquilo que se propõe a medir."),
    ]


def test_jsonl_missing_key_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "c.jsonl", '{"start": 0, "end": 1, "text": "a"}\n{"start_sec": 1, "end": 2, "text": "b"}\n')
    message = ingest_error(path)
    assert "c.jsonl, linha 2" in message and "start" in message and "faltam" in message


def test_jsonl_malformed_line(tmp_path: Path) -> None:
    path = write(tmp_path, "c.jsonl", '{"start": 0, "end": 1, "text": "a"}\n{"start": 1, "end": 2, "text": "b"\n')
    message = ingest_error(path)
    assert "c.jsonl, linha 2" in message and "JSON malformado" in message


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"start": -1.0, "end": 2.0, "text": "x"}, "negativo"),
        ({"start": 5.0, "end": 2.0, "text": "x"}, "vem antes do início"),
        ({"start": 3_600_000.0, "end": 3_600_500.0, "text": "x"}, "milissegundos"),
        ({"start": "1,5", "end": 2.0, "text": "x"}, "número"),
        ({"start": 1.0, "end": 2.0, "text": 7}, "texto"),
    ],
)
def test_jsonl_bad_values(tmp_path: Path, record: dict[str, object], expected: str) -> None:
    path = write(tmp_path, "v.jsonl", json.dumps(record) + "\n")
    message = ingest_error(path)
    assert "v.jsonl, linha 1" in message and expected in message


def test_overlong_line_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "longa.jsonl", '{"start": 0, "end": 1, "text": "' + "a" * (2 << 20) + '"}\n')
    assert "longa demais" in ingest_error(path)


# --------------------------------------------------------------------------- NURC-SP CSV (real data)


def _rows_with_text(path: Path, column: str) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [row for row in csv.DictReader(handle, delimiter=";") if row[column].strip()]


NURC_FILES = [
    (folder, name, column)
    for lecture in ("124", "153", "377", "405")
    for folder, name, column in (
        ("transcripts", f"sentences_SP_EF_{lecture}.csv", "text"),
        ("asr", f"SP_EF_{lecture}_asr_wav2vec2-xls-r-1b.csv", "prediction"),
    )
]


@pytest.mark.parametrize(("folder", "name", "column"), NURC_FILES)
def test_nurc_default_column_reads_every_row_with_text(folder: str, name: str, column: str) -> None:
    path = nurc(folder, name)
    rows = _rows_with_text(path, column)
    cues = cues_of(path)
    assert len(cues) == len(rows)
    assert cues[0].start == float(rows[0]["start_sec"].replace(",", "."))
    assert cues[0].text == " ".join(rows[0][column].split())


def test_nurc_first_cues_of_sp_ef_405() -> None:
    human = cues_of(nurc("transcripts", "sentences_SP_EF_405.csv"))
    asr = cues_of(nurc("asr", "SP_EF_405_asr_wav2vec2-xls-r-1b.csv"))
    expected_human = "então nós vamos começar pela préhistória hoje exatamente pelo período do paleolítico"
    assert human[0] == Cue(0.05869, 6.01037, expected_human)
    assert asr[0] == Cue(
        0.05869, 6.01037, "então junto começar pelas três histórias hoje exatamente pelo servido do paleolítico"
    )
    assert len(human) == len(asr) == 1052


def test_nurc_column_override() -> None:
    marked = cues_of(nurc("transcripts", "sentences_SP_EF_405.csv"), column="mark")
    assert marked[0].text.startswith("então nós vamos começar pela Pré-História... hoje::")
    reference = cues_of(nurc("asr", "SP_EF_405_asr_wav2vec2-xls-r-1b.csv"), column="sentence")
    assert reference[0].text == "então nós vamos começar pela préhistória hoje exatamente pelo período do paleolítico"


def test_nurc_unknown_column_lists_the_columns() -> None:
    with pytest.raises(IngestError) as info:
        read_cues(nurc("transcripts", "sentences_SP_EF_405.csv"), column="legenda")
    message = str(info.value)
    assert "sentences_SP_EF_405.csv" in message and "'legenda'" in message and "start_sec" in message


def test_column_is_ignored_for_formats_without_columns() -> None:
    assert [cue.text for cue in cues_of(CAPTIONS / "aula_utf8.srt", column="text")] == SRT_TEXTS


def test_csv_row_with_wrong_field_count(tmp_path: Path) -> None:
    path = write(
        tmp_path, "sentences_X.csv", "start_sec;end_sec;mark;text;duration\n0,5;1,5;Oi;oi;1,0\n1,5;2,5;tchau;1,0\n"
    )
    message = ingest_error(path)
    assert "sentences_X.csv, linha 3" in message and "campos" in message


def test_csv_bad_number(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", "start_sec;end_sec;text\n0,5;1,5;oi\num;2,5;tchau\n")
    message = ingest_error(path)
    assert "t.csv, linha 3" in message and "'um'" in message


def test_csv_end_before_start(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", "start_sec;end_sec;text\n3,5;1,5;oi\n")
    assert "vem antes do início" in ingest_error(path)


def test_csv_with_no_text_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", "start_sec;end_sec;text\n0,5;1,5;\n1,5;2,5;  \n")
    assert "nenhuma legenda" in ingest_error(path)


def test_cp1252_csv_with_decimal_commas(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", "start_sec;end_sec;text\r\n0,25;1,75;você é\r\n", encoding="cp1252")
    assert cues_of(path) == [Cue(0.25, 1.75, "você é")]


def test_nurc_video_id() -> None:
    assert nurc_video_id(Path("sentences_SP_EF_405.csv")) == "SP_EF_405"
    assert nurc_video_id(Path("/x/asr/SP_EF_405_asr_wav2vec2-xls-r-1b.csv")) == "SP_EF_405"
    assert nurc_video_id(Path("SP_D2_255.csv")) == "SP_D2_255"
    assert nurc_video_id(Path("aula_SP_EF_405.csv")) is None
    assert nurc_video_id(Path("sentences_SP_EF_405.vtt")) is None
    assert nurc_video_id(Path("youtube_auto_pt.vtt")) is None


# --------------------------------------------------------------------------- text cleanup


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("então<00:00:00.480><c> nós</c><00:00:00.719><c> vamos</c>", "então nós vamos"),
        ("<v Profa. Ana><i>Olá</i></v>", "Olá"),
        ("{\\an8}{\\i1}legenda{\\i0}\\Nnova linha", "legenda nova linha"),
        ("P&amp;D &lt;b&gt; &quot;aspas&quot;&nbsp;fim", 'P&D <b> "aspas" fim'),
        ("  muitos \t espaços\n\n aqui ", "muitos espaços aqui"),
        ("2 < 3 e 5 > 4", "2 < 3 e 5 > 4"),
    ],
)
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


# --------------------------------------------------------------------------- bounded memory

_MEASURE = """
import resource, sys
from pathlib import Path
from lecture_rag.ingest.readers import read_cues
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
count = 0
for cue in read_cues(Path(sys.argv[1])):
    count += 1
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(count, (after - before) // 1024)
"""


def _peak_growth_mb(path: Path) -> tuple[int, int]:
    """(cues read, growth of the peak RSS in MB) of a fresh interpreter reading ``path`` fully."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)], capture_output=True, text=True, timeout=300, check=True
    )
    count, growth = done.stdout.split()
    return int(count), int(growth)


def _write_repeated(path: Path, make: object, target_bytes: int) -> int:
    """Write records made by ``make(i)`` until ``target_bytes``; returns how many were written."""
    assert callable(make)
    written = n = 0
    with path.open("w", encoding="utf-8") as handle:
        while written < target_bytes:
            chunk = "".join(make(i) for i in range(n, n + 2000))
            handle.write(chunk)
            written += len(chunk.encode("utf-8"))
            n += 2000
    return n


_SPEECH = "então a ação e a reação têm o mesmo módulo, você percebe que é a terceira lei de newton; " * 12


def test_200mb_jsonl_is_streamed_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "grande.jsonl"

    def record(i: int) -> str:
        start = (i % 40_000) * 4.0  # times stay below 48 h; out of order is allowed
        return json.dumps({"start": start, "end": start + 3.5, "text": f"{i} {_SPEECH}"}, ensure_ascii=False) + "\n"

    n = _write_repeated(path, record, 200 * 2**20)
    started = time.monotonic()
    count, growth = _peak_growth_mb(path)
    assert count == n
    assert growth < 64, f"reading {path.stat().st_size >> 20} MB grew the peak RSS by {growth} MB"
    assert time.monotonic() - started < 60


def test_200mb_srt_is_streamed_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "grande.srt"
    lines = "\n".join(_SPEECH[k : k + 84] for k in range(0, len(_SPEECH), 84))

    def block(i: int) -> str:
        h, rest = divmod((i % 40_000) * 4, 3600)
        m, s = divmod(rest, 60)
        number = f"<i>{i}</i>" if i % 10 == 0 else str(i)  # some cues carry markup (pysubs2 path)
        return f"{i + 1}\n{h:02d}:{m:02d}:{s:02d},000 --> {h:02d}:{m:02d}:{s:02d},900\n{number} {lines}\n\n"

    n = _write_repeated(path, block, 200 * 2**20)
    started = time.monotonic()
    count, growth = _peak_growth_mb(path)
    assert count == n
    assert growth < 64, f"reading {path.stat().st_size >> 20} MB grew the peak RSS by {growth} MB"
    assert time.monotonic() - started < 60
