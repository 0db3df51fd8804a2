"""Hostile input through the real CLI: malformed files of every format, bad flags, bad config, bad question
and annotation files.

Each hostile file is built here, in a temporary folder, from the real caption fixtures and the NURC
data (cut short, binary, nested absurdly deep, in the wrong encoding), and handed to ``lecture-rag``
on a store that already holds a lecture. Every case must end in a clear Portuguese message that names
the file (and the line), the documented exit code (1 for an ingest with bad files, 2 for a command
refused), no traceback, and the lecture already stored byte-for-byte unchanged.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.paths import FIXTURES, shared

CAPTIONS = FIXTURES / "captions"
DEEP = 100_000
GOOD_TEXT = "a fotossíntese transforma luz em energia química"


def _clean(stderr: str) -> str:
    """stderr as one line (rich wraps long messages)."""
    return " ".join(stderr.split())


def _cut(data: bytes, marker: bytes, extra: int = 0) -> bytes:
    return data[: data.index(marker) + len(marker) + extra]


def _snapshot(store: Path) -> tuple[str, str]:
    """What the store shows of its lectures: the list and every segment of the stored lecture."""
    listed = run_cli("corpus", "list", "--json", store=store)
    shown = run_cli("corpus", "show", "aula", "--json", store=store)
    assert listed.returncode == 0 and shown.returncode == 0, listed.stderr + shown.stderr
    return listed.stdout, shown.stdout


@pytest.fixture(scope="module")
def base_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding one indexed lecture, ``aula`` (the SRT fixture)."""
    root = tmp_path_factory.mktemp("hostile-base")
    source = root / "aula.srt"
    shutil.copyfile(CAPTIONS / "aula_utf8.srt", source)
    store = root / "store"
    result = run_cli("ingest", str(source), store=store)
    assert result.returncode == 0, result.stderr
    return store


@pytest.fixture(scope="module")
def base_snapshot(base_store: Path) -> tuple[str, str]:
    return _snapshot(base_store)


@pytest.fixture
def store(base_store: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "store"
    shutil.copytree(base_store, copy)
    return copy


# --------------------------------------------------------------------------- malformed files per format


def _hostile_files(folder: Path) -> dict[str, str]:
    """Write the hostile files; return {file name: what its message must say}."""
    srt = (CAPTIONS / "aula_utf8.srt").read_bytes()
    vtt = (CAPTIONS / "aula_manual_pt.vtt").read_bytes()
    auto = (CAPTIONS / "youtube_auto_pt.vtt").read_bytes()
    nurc = shared("nurc-sp", "transcripts", "sentences_SP_EF_405.csv").read_bytes()
    third_row = nurc.split(b"\n")[3]
    in_text = nurc.index(third_row) + third_row.index(b";", third_row.index(b";", third_row.index(b";") + 1) + 1) + 5
    junk = bytes(range(256)) * 40
    files: dict[str, tuple[bytes, str]] = {
        # cut short: the same name as the stored lecture, so a failure must leave it as it was
        "aula.srt": (_cut(srt, b"\n\n3\n00:00:08,5"), "cortado"),
        "numero_solto.srt": (_cut(srt, b"\n\n2\n"), "cortado"),
        "numero_e_hora.srt": (_cut(srt, b"\n\n2\n00:0"), "cortado"),
        "meio_de_letra.srt": (_cut(srt, "Cinédia".encode()[:4]), "meio de um caractere"),
        "hora_cortada.vtt": (_cut(vtt, b"\n\n00:00:10.0"), "cortado"),
        "seta_cortada.vtt": (auto[: auto.rindex(b"\n\n") + 2 + len(b"00:00:36.880 --> 0")], "cortado"),
        "eventos.json3": (
            (CAPTIONS / "youtube_asr_pt.json3").read_bytes()[:1500],
            "JSON malformado",
        ),
        "whisper.json": ((CAPTIONS / "whisper_openai_pt.json").read_bytes()[:600], "JSON malformado"),
        "segmentos.jsonl": ((CAPTIONS / "aula_pt.jsonl").read_bytes()[:200], "JSON malformado"),
        "sentences_SP_EF_999.csv": (nurc[:in_text], "campos"),
        # binary junk under every transcript suffix
        **{f"binario{suffix}": (junk, "binário") for suffix in (".srt", ".vtt", ".json", ".json3", ".jsonl", ".csv")},
        # absurd nesting
        "fundo.json": (b"[" * DEEP + b"]" * DEEP, "aninhad"),
        "fundo.json3": (b'{"events": ' + b"[" * DEEP + b"]" * DEEP + b"}", "aninhad"),
        "fundo.jsonl": (b'{"start": 0, "end": 1, "text": ' + b'{"a": ' * DEEP + b"1" + b"}" * (DEEP + 1), "aninhad"),
        "pequeno.json": (b"[" * 30_000 + b"]" * 30_000, "aninhad"),  # small enough to be taken for a sidecar
        # wrong encodings
        "utf16_sem_bom.srt": (srt.decode("utf-8").encode("utf-16-le"), "binário"),
        "utf8_estragado.vtt": (vtt.replace(b"Lascaux", b"Lasc\x81\x8dux"), "linha 18: o arquivo está em UTF-8"),
        "vazio.srt": (b"", "vazio"),
    }
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    return {name: expected for name, (_, expected) in files.items()}


def test_a_folder_of_malformed_files_reports_each_by_name_and_indexes_the_good_one(
    store: Path, tmp_path: Path, base_snapshot: tuple[str, str]
) -> None:
    """Deep nesting used to stop the whole batch with a RecursionError; a cut SRT became speech."""
    folder = tmp_path / "hostis"
    folder.mkdir()
    expected = _hostile_files(folder)
    (folder / "zz_boa.srt").write_text(f"1\n00:00:01,000 --> 00:00:05,000\n{GOOD_TEXT}\n", encoding="utf-8")
    result = run_cli("ingest", str(folder), store=store)
    stderr = _clean(result.stderr)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for name, fragment in expected.items():
        match = re.search(
            rf"Falhou: {re.escape(str(folder / name))}: (.*?)(?= Falhou: |\d+ arquivo\(s\) ou vídeo\(s\) ingerido)",
            stderr,
        )
        assert match, f"{name} not reported:\n{stderr}"
        assert name in match.group(1) and fragment in match.group(1), (name, match.group(1))
    assert f"1 arquivo(s) ou vídeo(s) ingerido(s), {len(expected)} com erro" in stderr
    listed, shown = _snapshot(store)
    assert shown == base_snapshot[1], "the stored lecture changed"
    assert [v["video_id"] for v in json.loads(listed)] == ["aula", "zz_boa"]
    # the good file was indexed by that same ingest: search finds it, and index has nothing left to do
    found = run_cli("search", GOOD_TEXT, "--json", "--k", "1", store=store)
    assert found.returncode == 0 and json.loads(found.stdout)[0]["video_id"] == "zz_boa", found.stderr
    assert "skipped=True" in run_cli("index", store=store).stdout


@pytest.mark.parametrize(
    ("name", "data", "fragment"),
    [
        ("aula.srt", (CAPTIONS / "aula_utf8.srt").read_bytes()[:110], "cortado"),
        ("fundo.json3", b'{"events": ' + b"[" * DEEP + b"]" * DEEP + b"}", "aninhad"),
        ("objetos.json", b'{"segments": ' + b'{"a": ' * DEEP + b"1" + b"}" * (DEEP + 1), "aninhad"),
        ("aula.vtt", (CAPTIONS / "aula_manual_pt.vtt").read_bytes()[:615], "cortado"),
    ],
)
def test_one_malformed_file_is_one_clear_line(
    store: Path, tmp_path: Path, base_snapshot: tuple[str, str], name: str, data: bytes, fragment: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    result = run_cli("ingest", str(path), "--video-id", "aula", store=store)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    stderr = _clean(result.stderr)
    assert f"Falhou: {path}: {name}" in stderr and fragment in stderr, stderr
    assert _snapshot(store) == base_snapshot


# --------------------------------------------------------------------------- bad flags


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--window", "-5"), ("--window", "nan"), ("--window", "inf"), ("--window", "0"), ("--overlap", "200")],
)
def test_bad_window_and_overlap_are_refused_before_anything_is_stored(
    store: Path, tmp_path: Path, base_snapshot: tuple[str, str], flag: str, value: str
) -> None:
    """-5, nan and inf used to be accepted (0 silently meant the default)."""
    path = tmp_path / "nova.srt"
    path.write_text(f"1\n00:00:01,000 --> 00:00:05,000\n{GOOD_TEXT}\n", encoding="utf-8")
    result = run_cli("ingest", str(path), flag, value, store=store)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stdout + result.stderr
    assert _clean(result.stderr).startswith(f"Erro: {flag} {value}") and "segundos" in result.stderr
    assert _snapshot(store) == base_snapshot


# --------------------------------------------------------------------------- bad config


def _config_cases(tmp_path: Path) -> list[tuple[Path, dict[str, str], str]]:
    """(store, environment, what the message must say) for each kind of bad configuration file."""
    cases: list[tuple[Path, dict[str, str], str]] = []

    def store_with(name: str, content: bytes | None) -> Path:
        store = tmp_path / name
        store.mkdir()
        if content is None:
            (store / "config.toml").mkdir()
        else:
            (store / "config.toml").write_bytes(content)
        return store

    cases.append((store_with("pasta", None), {}, "é uma pasta"))
    cases.append((store_with("binario", bytes(range(256))), {}, "não é texto UTF-8"))
    cases.append((store_with("cp1252", "[retrieval]\nmode = 'híbrido'\n".encode("cp1252")), {}, "não é texto UTF-8"))
    cases.append((store_with("fundo", b"a = " + b"[" * DEEP + b"]" * DEEP + b"\n"), {}, "aninhadas"))
    cases.append((store_with("bom", b"\xef\xbb\xbf[retrieval]\nk = 3\n"), {}, "BOM"))
    cases.append((store_with("quebrado", b"[retrieval\n"), {}, "não é TOML válido"))
    cases.append((store_with("janela", b"[segmentation]\nwindow_seconds = inf\n"), {}, "segmentation.window_seconds"))
    missing = tmp_path / "nao-existe.toml"
    cases.append((store_with("ausente", b""), {"LECTURE_RAG_CONFIG": str(missing)}, "LECTURE_RAG_CONFIG"))
    return cases


def test_bad_config_files_stop_every_command_with_a_message_naming_the_file(base_store: Path, tmp_path: Path) -> None:
    """A folder or a missing LECTURE_RAG_CONFIG used to be ignored silently; binary or nested ones gave tracebacks."""
    for number, (case_store, env, fragment) in enumerate(_config_cases(tmp_path)):
        named = env.get("LECTURE_RAG_CONFIG", str(case_store / "config.toml"))
        commands = [["corpus", "list"], ["search", "paleolítico"]] if number < 2 else [["corpus", "list"]]
        for args in commands:
            result = run_cli(*args, "--store", str(case_store), env=env)
            stderr = _clean(result.stderr)
            assert result.returncode == 2, (case_store.name, args, result.stdout, result.stderr)
            assert "Traceback" not in result.stderr and named in stderr and fragment in stderr, (
                case_store.name,
                stderr,
            )


def test_an_alias_equal_to_another_labels_code_is_refused_when_a_run_starts(base_store: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    labels = "".join(
        f'[[labels]]\ncode = "{code}"\nname = "{name}"\ndescription = "d"\naliases = {aliases}\n'
        for code, name, aliases in (("C", "correta", '["P"]'), ("P", "parcial", "[]"))
    )
    config.write_text(labels, encoding="utf-8")
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "q1", "question": "o que é cinema?"}) + "\n", encoding="utf-8")
    result = run_cli(
        "run", str(questions), "--name", "apelido", "--llm", "none", "--judge-llm", "none",
        store=base_store, env={"LECTURE_RAG_CONFIG": str(config)},
    )  # fmt: skip
    stderr = _clean(result.stderr)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "'P'" in stderr and "rótulo C" in stderr and "código do rótulo P" in stderr


# --------------------------------------------------------------------------- question files


def _squad(data: object) -> bytes:
    return json.dumps({"version": "1.1", "data": data}).encode()


QUESTION_FILES: list[tuple[str, bytes | None, str]] = [
    ("binario.jsonl", bytes(range(256)) * 8, "binário"),
    ("pasta.jsonl", None, "é uma pasta"),
    ("fundo.jsonl", b'{"id": "q1", "question": ' + b"[" * DEEP + b"]" * DEEP + b"}\n", "linha 1"),
    ("fundo.json", b'{"data": ' + b"[" * DEEP + b"]" * DEEP + b"}", "aninhad"),
    ("sem_contexto.json", _squad([{"title": "t", "paragraphs": [{"qas": []}]}]), "artigo 1, parágrafo 1"),
    ("tipos.json", _squad([{"title": "t", "paragraphs": "texto"}]), "'paragraphs'"),
    ("nula.jsonl", b'{"id": "q1", "question": null}\n', "linha 1"),
    ("rotulo.jsonl", b'{"id": "q1", "question": "o que \\u00e9?", "label": 3}\n', "'label'"),
]


@pytest.mark.parametrize(("name", "content", "fragment"), QUESTION_FILES)
def test_bad_question_files_are_clear_errors(
    base_store: Path, tmp_path: Path, name: str, content: bytes | None, fragment: str
) -> None:
    """cp1252, binary, folders, deep nesting, broken SQuAD and numeric labels used to end in tracebacks."""
    path = tmp_path / name
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    for args in (
        ["eval", "retrieval", str(path), "--mode", "bm25"],
        ["run", str(path), "--name", "ruim", "--llm", "none", "--judge-llm", "none"],
    ):
        result = run_cli(*args, store=base_store)
        stderr = _clean(result.stderr)
        assert result.returncode == 2 and "Traceback" not in result.stderr, (args, result.stderr)
        assert str(path) in stderr and fragment in stderr, (args, stderr)


def test_a_cp1252_question_file_is_evaluated(base_store: Path, tmp_path: Path) -> None:
    path = tmp_path / "perguntas.jsonl"
    record = {
        "id": "q1",
        "question": "Quando começou a produção da Cinédia?",
        "evidence": [{"video_id": "aula", "start": 5, "end": 8}],
    }
    path.write_bytes((json.dumps(record, ensure_ascii=False) + "\n").encode("cp1252"))
    result = run_cli("eval", "retrieval", str(path), "--mode", "bm25", "--json", store=base_store)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["modes"]["bm25"]["hit@1"] == 1.0


# --------------------------------------------------------------------------- evidence outside the store, annotations


def test_evidence_naming_videos_not_in_the_store_is_warned_about_in_one_line(store: Path, tmp_path: Path) -> None:
    """Such evidence used to score 0 without a word."""
    path = tmp_path / "perguntas.jsonl"
    records = [
        {"id": "q1", "question": "Quando começou a Cinédia?", "evidence": [{"video_id": "aula", "start": 5, "end": 8}]},
        {"id": "q2", "question": "O que é validade?", "evidence": [{"video_id": "SP_EF_999", "start": 0, "end": 9}]},
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    for args in (
        ["eval", "retrieval", str(path), "--mode", "bm25"],
        ["run", str(path), "--name", "fora", "--llm", "none", "--judge-llm", "none", "--judges", "ar"],
    ):
        result = run_cli(*args, store=store)
        assert result.returncode == 0, result.stderr
        warnings = [line for line in result.stderr.splitlines() if line.startswith("Aviso:")]
        assert len(warnings) == 1 and "SP_EF_999" in warnings[0] and "1 pergunta(s)" in warnings[0], result.stderr
        assert "aula," not in warnings[0]


def test_annotation_files_import_whole_or_not_at_all(store: Path, tmp_path: Path) -> None:
    """A long comment, a one-column file, a misaligned row and cp1252 used to end in tracebacks."""
    questions = tmp_path / "perguntas.jsonl"
    questions.write_text(
        "".join(json.dumps({"id": f"q{n}", "question": f"pergunta {n} sobre cinema?"}) + "\n" for n in (1, 2)),
        encoding="utf-8",
    )
    made = run_cli(
        "run", str(questions), "--name", "anota", "--llm", "none", "--judge-llm", "none", "--judges", "ar", store=store
    )
    assert made.returncode == 0, made.stderr

    def annotations() -> dict[str, dict[str, object]]:
        report = json.loads(run_cli("report", "anota", "--format", "json", store=store).stdout)
        return {r["qid"]: r["annotations"] for r in report["records"]}

    refused = {
        "uma_coluna.csv": (b"qid\nq1\nq2\n", "coluna 'label'"),
        "desalinhada.csv": (b"qid,label,comment\nq1,C,ok\nq2,P,bom, mas curto\n", "linha 3"),
        "binaria.csv": (bytes(range(256)) * 8, "binário"),
        "fundo.json": (b"[" * DEEP + b"]" * DEEP, "aninhad"),
    }
    for name, (content, fragment) in refused.items():
        path = tmp_path / name
        path.write_bytes(content)
        result = run_cli("annotate", "import", "anota", str(path), store=store)
        stderr = _clean(result.stderr)
        assert result.returncode == 2 and "Traceback" not in result.stderr, (name, result.stderr)
        assert str(path) in stderr and fragment in stderr, (name, stderr)
        assert annotations() == {"q1": {}, "q2": {}}, name  # nothing half-imported
    comment = "Cita o trecho certo, mas não a data; " * 130
    good = tmp_path / "excel.csv"
    good.write_bytes(f'qid;rótulo;comentário\nq1;não respondeu;"{comment}"\nq2;correta;ótima\n'.encode("cp1252"))
    result = run_cli("annotate", "import", "anota", str(good), "--annotator", "ana", store=store)
    assert result.returncode == 0, result.stderr
    got = annotations()
    assert got["q1"]["ana"]["label"] == "N" and got["q2"]["ana"]["label"] == "C"  # type: ignore[index]
    assert os.path.getsize(good) > 4700
