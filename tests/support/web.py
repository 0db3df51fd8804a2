"""The web tests' shared store and ``serve`` process, and the helpers that read what it answered.

One store and one server per test session, built by whichever web test module asks first
(:func:`web_server`): one NURC lecture without a URL, an SRT lecture with a YouTube URL whose
captions carry HTML/script payloads, and an SRT lecture with a media URL whose title carries
one; a no-LLM run over five questions answered by the real engine (``lecture-rag run --llm none``).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run_cli
from tests.support.paths import QUESTIONS, shared
from tests.support.servers import ServeProcess, start_serve
from tests.support.transcripts import srt_text

RUN = "aula-web"
TOKEN = "token-de-teste-4f7c1a"
YOUTUBE_ID = "dQw4w9WgXcQ"
MEDIA_URL = "https://media.example.org/aulas/revolucao-industrial.mp4"
XSS_TITLE = "Revolução Industrial <img src=x onerror=alert(3)>"
SCRIPT_CAPTION = "<script>alert(1)</script>"
IMG_CAPTION = "<img src=x onerror=alert(2)>"
Q_PHOTO = "Como as plantas fazem fotossíntese?"
Q_INDUSTRY = "Quando começou a Revolução Industrial na Inglaterra?"
Q_CAVES = "Onde ficam as cavernas mais conhecidas com pinturas paleolíticas?"

# Caption payloads are entity-encoded in the SRT: the reader strips tag-shaped markup, then decodes
# entities, so this is how markup survives into stored text (raw tags would simply be removed).
PHOTO_CUES = [
    (5, 20, "Hoje vamos estudar a fotossíntese, o processo pelo qual as plantas produzem o próprio alimento."),
    (20, 45, "&lt;script&gt;alert(1)&lt;/script&gt; e &lt;img src=x onerror=alert(2)&gt; <b>não</b> são matéria."),
    (45, 80, "A clorofila nos cloroplastos absorve a luz do sol, principalmente nas faixas do azul e do vermelho."),
    (80, 118, "Na fase clara, a energia luminosa quebra a molécula de água e libera oxigênio para a atmosfera."),
    (130, 170, "Na fase escura, o ciclo de Calvin fixa o gás carbônico e produz glicose usando ATP e NADPH."),
    (170, 220, "Por isso as plantas são seres autótrofos: fabricam glicose a partir de luz, água e gás carbônico."),
    (230, 270, "A respiração celular faz o caminho inverso e consome a glicose para obter energia."),
    (270, 320, "Na próxima aula veremos como a temperatura e o gás carbônico afetam a fotossíntese."),
]
INDUSTRY_CUES = [
    (3, 30, "A Revolução Industrial começou na Inglaterra por volta de 1760, com a mecanização da indústria têxtil."),
    (30, 70, "A máquina a vapor de James Watt aumentou muito a produção das fábricas e mudou os transportes."),
    (70, 115, "O carvão mineral era a principal fonte de energia e havia muitas minas na Inglaterra."),
    (125, 170, "Os operários trabalhavam jornadas de catorze horas, inclusive mulheres e crianças."),
    (170, 215, "Surgiram os sindicatos e movimentos como o ludismo, que quebrava as máquinas em protesto."),
    (225, 280, "A segunda Revolução Industrial, no fim do século dezenove, trouxe a eletricidade, o aço e o petróleo."),
]
# (qid, question); the first is about the SRT with the payloads, the others come from the NURC set.
RUN_QUESTIONS = [("web-foto", Q_PHOTO), ("nurc-048", None), ("nurc-049", None), ("nurc-050", None), ("nurc-051", None)]
#: The session's shared server (the ``lecture-rag serve`` command; see :func:`tests.support.servers.start_serve`).
WebServer = ServeProcess


_SHARED: dict[str, WebServer] = {}


def _write_sources(root: Path) -> Path:
    src = root / "aulas"
    src.mkdir(parents=True)
    (src / "fotossintese.srt").write_text(srt_text(PHOTO_CUES), encoding="utf-8")
    (src / "revolucao-industrial.srt").write_text(srt_text(INDUSTRY_CUES), encoding="utf-8")
    (src / "sentences_SP_EF_405.csv").symlink_to(shared("nurc-sp", "transcripts", "sentences_SP_EF_405.csv"))
    title = XSS_TITLE.replace('"', '""')
    (src / "videos.csv").write_text(
        "file,video_id,title,course,url\n"
        f"fotossintese.srt,bio-fotossintese,Fotossíntese (Biologia),biologia,https://www.youtube.com/watch?v={YOUTUBE_ID}\n"
        f'revolucao-industrial.srt,hist-revolucao,"{title}",história,{MEDIA_URL}\n'
        "sentences_SP_EF_405.csv,SP_EF_405,Arte do Paleolítico (NURC SP_EF_405),história da arte,\n",
        encoding="utf-8",
    )
    return src


def _write_questions(root: Path) -> Path:
    nurc = {(obj := json.loads(line))["id"]: obj for line in QUESTIONS.read_text(encoding="utf-8").splitlines()}
    lines = []
    for qid, question in RUN_QUESTIONS:
        if question is None:
            lines.append(json.dumps(nurc[qid], ensure_ascii=False))
        else:
            evidence = [{"video_id": "bio-fotossintese", "start": 80.0, "end": 118.0}]
            lines.append(
                json.dumps(
                    {
                        "id": qid,
                        "question": question,
                        "answer": "Pela luz, na clorofila.",
                        "evidence": evidence,
                        "type": "factual",
                        "label": None,
                    },
                    ensure_ascii=False,
                )
            )
    path = root / "perguntas.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass(frozen=True)
class Verdict:
    """What the real judge stored for one question: the expectations of the web tests."""

    ar: float
    ar_reasoning: str
    label: str


def verdicts(store: Path) -> dict[str, Verdict]:
    """The bundled model's judgments for the run, read straight from SQLite (not through the app)."""
    with sqlite3.connect(store / "lecture-rag.sqlite3") as conn:
        rows = conn.execute("SELECT qid, kind, data FROM judgments WHERE run=?", (RUN,)).fetchall()
    by_qid: dict[str, dict[str, Any]] = {}
    for qid, kind, data in rows:
        by_qid.setdefault(qid, {})[kind] = json.loads(data)
    return {
        qid: Verdict(j["answer_relevance"]["score"], j["answer_relevance"]["reasoning"], j["auto_label"]["label"])
        for qid, j in by_qid.items()
    }


def start_web(store: Path, log: Path, env: dict[str, str] | None = None) -> WebServer:
    """A ``serve`` process over ``store`` on a free port; ``env`` adds settings (``LECTURE_RAG_WEB__…``)."""
    return start_serve(store, log, TOKEN, env=env, startup_s=120)


def web_server(tmp_path_factory: pytest.TempPathFactory) -> WebServer:
    """The session's store and server, built on first use by whichever web test module runs first."""
    if "server" not in _SHARED:
        root = tmp_path_factory.mktemp("web")
        store = root / "store"
        ingest = run_cli("ingest", str(_write_sources(root)), store=store)
        assert ingest.returncode == 0, ingest.stderr + ingest.stdout
        # Extractive answers judged by the bundled model, held to the output grammar: real verdicts
        # (of a 135M model, so not good ones), the two fields the seed's record shows.
        ran = run_cli(
            "run",
            str(_write_questions(root)),
            "--name",
            RUN,
            "--llm",
            "none",
            "--judge-llm",
            "gguf:bundled",
            "--judges",
            "ar,label",
            "--k",
            "5",
            store=store,
            timeout=600,
        )
        assert ran.returncode == 0, ran.stderr + ran.stdout
        _SHARED["server"] = start_web(store, root / "server.log")
    return _SHARED["server"]


def parse_events(body: str) -> list[tuple[str, Any]]:
    """SSE text → [(event, data)], as a browser's EventSource would split it."""
    events = []
    for block in body.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def stored_annotations(store: Path, annotator: str) -> dict[str, str]:
    with sqlite3.connect(store / "lecture-rag.sqlite3") as conn:
        rows = conn.execute("SELECT qid, label FROM annotations WHERE run=? AND annotator=?", (RUN, annotator))
        return dict(rows.fetchall())
