"""The course team's side through the real CLI (issue 25): what a person enters is kept, manifests, one dialect.

Each test is a defect seen by a course team; each failed before its fix.
"""

from __future__ import annotations

import functools
import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.paths import FIXTURES, QUESTIONS, shared

SRT = "1\n00:00:01,000 --> 00:00:04,000\n{text}\n"


def _videos(store: Path, env: dict[str, str] | None = None) -> dict[str, dict[str, object]]:
    result = run_cli("corpus", "list", "--json", store=store, env=env)
    assert result.returncode == 0, result.stderr
    return {str(v["video_id"]): v for v in json.loads(result.stdout)}


def _srt(path: Path, text: str) -> Path:
    path.write_text(SRT.format(text=text), encoding="utf-8")
    return path


def test_reingest_after_a_caption_fix_keeps_title_and_course_and_says_what_changed(tmp_path: Path) -> None:
    aula = _srt(tmp_path / "aula.srt", "a fotossíntese acontece no cloroplasto")
    store = tmp_path / "s"
    first = run_cli(
        "ingest", str(aula), "--title", "Aula 1: fotossíntese", "--course", "Biologia Celular", "--no-index",
        store=store,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    _srt(aula, "a fotossíntese acontece nos cloroplastos")  # the captions were corrected
    again = run_cli("ingest", str(aula), "--no-index", store=store)
    assert again.returncode == 0, again.stderr
    video = _videos(store)["aula"]
    assert (video["title"], video["course"]) == ("Aula 1: fotossíntese", "Biologia Celular")
    # A flag changes it, and the change is said, one line per field.
    third = run_cli("ingest", str(aula), "--course", "Biologia", "--no-index", store=store)
    assert third.returncode == 0, third.stderr
    assert "aula: curso: 'Biologia Celular' → 'Biologia'" in third.stdout
    assert "título" not in third.stdout
    assert _videos(store)["aula"]["course"] == "Biologia"


def test_corpus_edit_is_kept_on_reingest(tmp_path: Path) -> None:
    aula = _srt(tmp_path / "aula.srt", "texto da aula")
    store = tmp_path / "s"
    assert run_cli("ingest", str(aula), "--no-index", store=store).returncode == 0
    edited = run_cli(
        "corpus", "edit", "aula", "--title", "Aula 2: mitose", "--course", "Biologia", "--url",
        "https://media.example.edu/aula2.mp4", store=store,
    )  # fmt: skip
    assert edited.returncode == 0, edited.stderr
    assert "aula: título: 'aula' → 'Aula 2: mitose'" in edited.stdout
    _srt(aula, "texto da aula corrigido")
    assert run_cli("ingest", str(aula), "--no-index", store=store).returncode == 0
    video = _videos(store)["aula"]
    assert (video["title"], video["course"], video["url"]) == (
        "Aula 2: mitose", "Biologia", "https://media.example.edu/aula2.mp4",
    )  # fmt: skip
    missing = run_cli("corpus", "edit", "nao-existe", "--title", "x", store=store)
    assert missing.returncode == 2 and "corpus list" in missing.stderr


def test_title_and_video_id_with_a_url_are_refused_not_ignored(tmp_path: Path) -> None:
    for flag in ("--title", "--video-id"):
        result = run_cli("ingest", "https://www.youtube.com/watch?v=dQw4w9WgXcQ", flag, "x", store=tmp_path / "s")
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"{flag} vale(m) só para um arquivo" in result.stderr and "corpus edit" in result.stderr
        assert "Traceback" not in result.stderr
    folder = tmp_path / "pasta"
    folder.mkdir()
    _srt(folder / "a.srt", "um")
    result = run_cli("ingest", str(folder), "--title", "x", store=tmp_path / "s")
    assert result.returncode == 2 and "manifesto" in result.stderr


def test_asr_transcript_does_not_silently_replace_the_human_one(tmp_path: Path) -> None:
    store = tmp_path / "s"
    human = shared("nurc-sp", "transcripts", "sentences_SP_EF_405.csv")
    asr = shared("nurc-sp", "asr", "SP_EF_405_asr_wav2vec2-xls-r-1b.csv")
    assert run_cli("ingest", str(human), "--no-index", store=store).returncode == 0
    before = run_cli("corpus", "show", "SP_EF_405", "--json", store=store).stdout
    refused = run_cli("ingest", str(asr), "--no-index", store=store)
    assert refused.returncode == 1
    assert "já tem transcrição humana (CSV NURC)" in refused.stderr and "--video-id SP_EF_405-asr" in refused.stderr
    assert run_cli("corpus", "show", "SP_EF_405", "--json", store=store).stdout == before
    # Both kept, as the message says; the labels tell them apart.
    both = run_cli("ingest", str(asr), "--video-id", "SP_EF_405-asr", "--no-index", store=store)
    assert both.returncode == 0, both.stderr
    videos = _videos(store)
    assert videos["SP_EF_405"]["source_label"] == "transcrição humana (CSV NURC)"
    assert videos["SP_EF_405-asr"]["source_label"] == "transcrição automática (ASR, CSV NURC)"


def test_course_manifest_gives_the_nurc_sample_its_titles(tmp_path: Path) -> None:
    store = tmp_path / "s"
    manifest = FIXTURES / "nurc" / "lecture-rag.toml"
    result = run_cli(
        "ingest", str(shared("nurc-sp", "transcripts")), "--manifest", str(manifest), "--no-index", store=store
    )
    assert result.returncode == 0, result.stderr
    videos = _videos(store)
    assert videos["SP_EF_405"]["title"] == "Pré-história: o paleolítico"
    assert {v["course"] for v in videos.values()} == {"NURC-SP: elocuções formais"}
    assert not any(str(v["title"]).startswith("sentences_") for v in videos.values())


def test_manifest_in_the_folder_sets_titles_courses_and_media_urls(tmp_path: Path) -> None:
    folder = tmp_path / "curso"
    folder.mkdir()
    for name in ("aula1", "aula2"):
        _srt(folder / f"{name}.srt", f"conteúdo da {name}")
    (folder / "manifest.csv").write_text(
        "file,title,course,media_url,language\n"
        "aula1.srt,Aula 1: células,Biologia Celular,https://media.example.edu/aula1.mp4,pt\n"
        "aula2.srt,Aula 2: membranas,Biologia Celular,,pt\n",
        encoding="utf-8",
    )
    result = run_cli("ingest", str(folder), "--no-index", store=tmp_path / "s")
    assert result.returncode == 0, result.stderr
    assert "manifest.csv" not in result.stderr  # a manifest is metadata, not an unsupported transcript
    videos = _videos(tmp_path / "s")
    assert videos["aula1"]["title"] == "Aula 1: células" and videos["aula2"]["title"] == "Aula 2: membranas"
    assert videos["aula1"]["url"] == "https://media.example.edu/aula1.mp4"
    assert {v["course"] for v in videos.values()} == {"Biologia Celular"}
    (folder / "lecture-rag.toml").write_text(
        'course = "Biologia"\n[[lecture]]\nfile = "aula2.srt"\ntitle = "Aula 2: a membrana"\n', encoding="utf-8"
    )
    (folder / "manifest.csv").unlink()
    again = run_cli("ingest", str(folder), "--no-index", store=tmp_path / "s")
    assert again.returncode == 0, again.stderr
    assert "aula2: título: 'Aula 2: membranas' → 'Aula 2: a membrana'" in again.stdout
    assert _videos(tmp_path / "s")["aula1"]["title"] == "Aula 1: células"  # not in this manifest: kept


def _course_folder(root: Path, titles: dict[str, str], course: str) -> Path:
    """A folder of SRT lectures and its lecture-rag.toml giving each a title, and all one course."""
    folder = root / "curso"
    folder.mkdir(exist_ok=True)
    lectures = "".join(f'[[lecture]]\nfile = "{name}.srt"\ntitle = "{title}"\n' for name, title in titles.items())
    (folder / "lecture-rag.toml").write_text(f'course = "{course}"\n{lectures}', encoding="utf-8")
    for name in titles:
        if not (folder / f"{name}.srt").exists():
            _srt(folder / f"{name}.srt", f"conteúdo da {name}")
    return folder


def test_an_unchanged_manifest_does_not_undo_a_later_edit_a_changed_one_does(tmp_path: Path, store_url: str) -> None:
    """The newest statement of a person wins, on both store backends (the origins are stored)."""
    store = tmp_path / "s"
    env = {"LECTURE_RAG_DATABASE_URL": store_url} if store_url else None

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        result = run_cli(*args, store=store, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    titles = {"aula1": "Aula 1: células", "aula2": "Aula 2: membranas"}
    folder = _course_folder(tmp_path, titles, "Biologia Celular")
    cli("ingest", str(folder), "--no-index")
    cli("corpus", "edit", "aula1", "--title", "Aula 1: a célula", "--course", "Biologia")
    # The same manifest, re-read by a re-ingest of the folder (metadata only, then after a caption fix).
    again = cli("ingest", str(folder), "--no-index")
    assert "título" not in again.stdout and "curso" not in again.stdout
    _srt(folder / "aula1.srt", "conteúdo corrigido da aula1")
    fixed = cli("ingest", str(folder), "--no-index")
    assert "substituído" in fixed.stdout and "título" not in fixed.stdout
    video = _videos(store, env)["aula1"]
    assert (video["title"], video["course"]) == ("Aula 1: a célula", "Biologia")
    # A manifest value that changed since it was applied is newer than the edit: applied, and said.
    _course_folder(tmp_path, {**titles, "aula1": "Aula 1: a célula viva"}, "Biologia Celular")
    changed = cli("ingest", str(folder), "--no-index")
    assert "aula1: título: 'Aula 1: a célula' → 'Aula 1: a célula viva'" in changed.stdout
    assert "curso" not in changed.stdout  # the manifest's course did not change: the edited one stays
    videos = _videos(store, env)
    assert (videos["aula1"]["title"], videos["aula1"]["course"]) == ("Aula 1: a célula viva", "Biologia")
    assert (videos["aula2"]["title"], videos["aula2"]["course"]) == ("Aula 2: membranas", "Biologia Celular")
    # An explicit flag always wins, and an unchanged manifest does not undo it either.
    flagged = cli("ingest", str(folder / "aula2.srt"), "--title", "Aula 2: a membrana plasmática", "--no-index")
    assert "aula2: título: 'Aula 2: membranas' → 'Aula 2: a membrana plasmática'" in flagged.stdout
    cli("ingest", str(folder), "--course", "Biologia Celular e Molecular", "--no-index")
    videos = _videos(store, env)
    assert videos["aula2"]["title"] == "Aula 2: a membrana plasmática"
    assert {v["course"] for v in videos.values()} == {"Biologia Celular e Molecular"}
    # A lecture first ingested with a flag over its manifest title: that title was seen, not applied,
    # and is no newer statement when the folder is ingested next.
    _course_folder(tmp_path, {**titles, "aula1": "Aula 1: a célula viva", "aula3": "Aula 3: organelas"}, "Biologia")
    cli("ingest", str(folder / "aula3.srt"), "--title", "Aula 3: as organelas", "--no-index")
    cli("ingest", str(folder), "--no-index")
    assert _videos(store, env)["aula3"]["title"] == "Aula 3: as organelas"


def test_corpus_remove_asks_before_removing(tmp_path: Path) -> None:
    store = tmp_path / "s"
    assert run_cli("ingest", str(_srt(tmp_path / "aula.srt", "texto")), "--no-index", store=store).returncode == 0
    refused = run_cli("corpus", "remove", "aula", "--no-index", store=store)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert "aula" in _videos(store)
    done = run_cli("corpus", "remove", "aula", "--no-index", "--yes", store=store)
    assert done.returncode == 0 and "Removido: aula" in done.stdout


def test_ingest_ends_with_what_to_do_next(tmp_path: Path) -> None:
    result = run_cli("ingest", str(_srt(tmp_path / "aula.srt", "texto")), "--no-index", store=tmp_path / "s")
    assert result.returncode == 0
    assert "Próximo passo: 'lecture-rag index'" in " ".join(result.stderr.split())


# -- reports that say what happened (item 4) ------------------------------------------------------


def _questions(tmp_path: Path, n: int, labels: dict[int, str] | None = None) -> Path:
    lines = QUESTIONS.read_text(encoding="utf-8").splitlines()[:n]
    out = []
    for i, line in enumerate(lines):
        obj = json.loads(line)
        if labels and i in labels:
            obj["label"] = labels[i]
        out.append(json.dumps(obj, ensure_ascii=False))
    path = tmp_path / f"perguntas{n}.jsonl"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def test_reports_without_a_judge_and_with_comments_say_what_happened(nurc_indexed: Path, tmp_path: Path) -> None:
    questions = _questions(tmp_path, 3, labels={0: "C"})
    run = run_cli(
        "run", str(questions), "--name", "equipe-a", "--llm", "none", "--judge-llm", "none", store=nurc_indexed
    )
    assert run.returncode == 0, run.stderr
    assert "3 respondidas, nenhuma avaliada (sem juiz)" in run.stdout and "avaliadas," not in run.stdout
    qids = [json.loads(line)["id"] for line in questions.read_text(encoding="utf-8").splitlines()]
    labels = tmp_path / "rotulos.csv"
    labels.write_text(f"qid,label,annotator,comment\n{qids[1]},P,ana,faltou citar o minuto certo\n", encoding="utf-8")
    assert run_cli("annotate", "import", "equipe-a", str(labels), store=nurc_indexed).returncode == 0

    agreement = run_cli("agreement", "equipe-a", store=nurc_indexed)
    assert agreement.returncode == 0, agreement.stderr
    text = " ".join(agreement.stdout.split())
    assert "não interpretadas" not in text and "{'" not in text
    assert "sem juiz configurado: nenhuma das 3 respostas foi avaliada" in text
    assert "3 extrativa(s)" in text

    csv_text = run_cli("report", "equipe-a", "--format", "csv", store=nurc_indexed).stdout
    assert "annotator_comments" in csv_text.splitlines()[0] and "ana: faltou citar o minuto certo" in csv_text

    md = run_cli("report", "equipe-a", store=nurc_indexed).stdout
    assert md.count("**Resposta extrativa (sem LLM)**: ") == 3 and "Resposta gerada pelo LLM" not in md
    assert "- *URL:* sem URL" in md and "*URL:* oculto" not in md  # the NURC lectures have no URL
    assert "]()" not in md and "(sem URL)" in md
    hidden = run_cli("report", "equipe-a", "--hide-urls", store=nurc_indexed).stdout
    assert "- *URL:* oculto" in hidden  # the seed's format when URLs are hidden on purpose

    run_b = run_cli(
        "run", str(questions), "--name", "equipe-b", "--llm", "none", "--judge-llm", "none", store=nurc_indexed
    )
    assert run_b.returncode == 0, run_b.stderr
    compared = run_cli("compare", "equipe-a", "equipe-b", store=nurc_indexed)
    assert compared.returncode == 0, compared.stderr
    out = " ".join(compared.stdout.split())
    assert "→ -" not in out and "Nenhuma pergunta mudou de rótulo." in out
    assert "1 rótulo(s) em só uma das rodadas" in out
    data = json.loads(run_cli("compare", "equipe-a", "equipe-b", "--json", store=nurc_indexed).stdout)
    fractions = {m["name"]: m["a"] for m in data["metrics"] if m["name"].startswith("manual ")}
    assert fractions == {"manual C (fração das anotadas)": 0.5, "manual P (fração das anotadas)": 0.5}


# -- eval retrieval at 80 columns (item 5) ---------------------------------------------------------


def test_eval_retrieval_table_fits_80_columns(nurc_indexed: Path) -> None:
    result = run_cli("eval", "retrieval", str(QUESTIONS), store=nurc_indexed, env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in result.stdout  # nothing cut
    header = next(line for line in lines if "métrica" in line)
    assert "dense" in header and "bm25" not in header  # one configuration: the one `ask` uses
    assert "recall@10" in result.stdout and "acerto@10" in result.stdout and "offset_median" not in result.stdout


# -- one dialect (item 6) --------------------------------------------------------------------------


def test_one_cli_dialect(nurc_indexed: Path, tmp_path: Path) -> None:
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("lecture-rag ")
    for command in (("corpus", "remove"), ("ingest",), ("eval", "retrieval"), ()):
        shown = run_cli(*command, "--help")
        assert shown.returncode == 0, shown.stderr
        for english in ("<bool>", "<list[str]>", "<str>", "Show this message and exit.", "[required]", "Options"):
            assert english not in shown.stdout, (command, english)
        assert "Mostrar esta ajuda e sair." in shown.stdout
    asked = run_cli("ask", "como viviam os homens do paleolítico?", "--json", store=nurc_indexed)
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["question"] == "como viviam os homens do paleolítico?"
    assert json.loads(run_cli("index", "--json", store=nurc_indexed).stdout)["segments"] > 0
    assert isinstance(json.loads(run_cli("runs", "--json", store=nurc_indexed).stdout), list)
    no_url = run_cli(
        "ask", "arte rupestre", "--llm", "openai", store=nurc_indexed, env={"LECTURE_RAG_LLM_BASE_URL": ""}
    )
    assert no_url.returncode == 2 and "LECTURE_RAG_LLM_BASE_URL" in no_url.stderr
    assert "8080/v1 para o llama.cpp" in " ".join(no_url.stderr.split())


#: Click's usage errors as a user meets them (typos, a missing or extra argument, a bad value), and the
#: Portuguese each must say instead of click's English.
USAGE_ERRORS = (
    (("aks", "pergunta"), "Não existe o comando 'aks'. Você quis dizer 'ask'?"),
    (("corpus", "mostrar"), "Não existe o comando 'mostrar'."),
    (("ingest", "aula.srt", "--titulo", "x"), "A opção --titulo não existe (opções parecidas: --title"),
    (("corpus", "edit"), "Falta o argumento 'video_id'."),
    (("run", "perguntas.jsonl"), "Falta a opção '--name'."),
    (("corpus", "show", "a", "b"), "Argumento(s) a mais, não esperado(s): b"),
    (("ask", "pergunta", "--k", "muitos"), "Valor inválido para '--k': esperava um número inteiro (ex.: 5)."),
    (("ask", "pergunta", "--k", "0"), "Valor inválido para '--k': deve ser no mínimo 1."),
    (("ingest", "aula.srt", "--window", "x"), "Valor inválido para '--window': esperava um número"),
    (("ask", "pergunta", "--format", "xml"), "Valor inválido para '--format': 'xml' não é um destes:"),
    (("ask", "pergunta", "--format"), "A opção '--format' precisa de um valor."),
)
CLICK_ENGLISH = (
    "No such", "Missing", "Got unexpected", "Invalid value", "Try '", "for help", "Error", "Possible options",
    "Did you mean", "Usage", "[OPTIONS]", "COMMAND", "requires an argument", "Input should", "Value error",
)  # fmt: skip


def test_click_usage_errors_are_portuguese(tmp_path: Path) -> None:
    for args, portuguese in USAGE_ERRORS:
        result = run_cli(*args, store=tmp_path / "s")
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert portuguese in result.stderr, (args, result.stderr)
        if args[-1] != "--format":  # an option without its value fails before click knows the command's usage
            assert "Veja 'lecture-rag" in result.stderr and "--help' para ajuda." in result.stderr
            assert "Uso: lecture-rag" in result.stderr and "[OPÇÕES]" in result.stderr
        for english in CLICK_ENGLISH:
            assert english not in result.stderr, (args, english, result.stderr)


# -- errors that name the cause (item 7) -----------------------------------------------------------


@pytest.fixture(scope="module")
def web_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A plain web site: not a video, not an LLM."""
    root = tmp_path_factory.mktemp("site")
    (root / "index.html").write_text("<!DOCTYPE html><html><body><h1>Curso</h1></body></html>", encoding="utf-8")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_missing_video_is_one_portuguese_line(web_site: str, tmp_path: Path) -> None:
    url = f"{web_site}/nao-existe.mp4"
    loopback = {"LECTURE_RAG_INGEST__ALLOW_PRIVATE_URLS": "true"}  # the site lives on 127.0.0.1
    result = run_cli("ingest", url, "--no-index", store=tmp_path / "s", env=loopback)
    assert result.returncode == 1
    err = " ".join(result.stderr.split())
    assert f"Falhou: {url}: o site diz que o vídeo não existe (HTTP 404)" in err
    assert "caused by" not in err and "HTTPError" not in err and "Ingestão" not in result.stdout
    verbose = run_cli("ingest", url, "--no-index", "--verbose", store=tmp_path / "s", env=loopback)
    assert "detalhe:" in verbose.stderr and "404" in verbose.stderr


def test_a_web_page_as_llm_url_is_named_not_dumped(web_site: str, tmp_path: Path) -> None:
    env = {"LECTURE_RAG_LLM_BASE_URL": f"{web_site}/v1", "LECTURE_RAG_LLM_MODEL": "x", "LECTURE_RAG_LLM_RETRIES": "0"}
    result = run_cli("llm", "check", "--llm", "openai", store=tmp_path / "s", env=env)
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1
    assert "uma página da web (HTML), não como uma API de LLM" in out
    assert "<html" not in out.lower() and "<!doctype" not in out.lower() and "Confira LECTURE_RAG_LLM_MODEL" not in out


# -- progress (item 8) -----------------------------------------------------------------------------


def test_the_sample_lectures_ingest_without_warnings(tmp_path: Path) -> None:
    result = run_cli("ingest", str(shared("nurc-sp", "transcripts")), "--no-index", store=tmp_path / "s",
                     env={"COLUMNS": "80"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Aviso" not in result.stderr and "fora da ordem" not in result.stderr
    assert "…" not in result.stdout  # file names folded, not cut to 'sentences_S…'
