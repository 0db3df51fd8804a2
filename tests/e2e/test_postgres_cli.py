"""The CLI end to end on a shared PostgreSQL store, as a team runs it: several machines' folders, one database.

Each process has its own ``--store`` folder (its search index) and the same
``LECTURE_RAG_DATABASE_URL``; everything they write (corpus, cache, runs,
labels) lands in the one database. Also: the bad inputs of a shared
database (wrong URL, a server that is down, a schema from a newer release)
each end with one clear error, exit code 2, and nothing written.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from lecture_rag.store.schema import SCHEMA_VERSION, migrations
from tests.support.cli import EXE, cli_env, kill_when, run_cli
from tests.support.paths import QUESTIONS, shared
from tests.support.postgres import PgServer
from tests.support.transcripts import big_srt

LECTURES = ("sentences_SP_EF_377.csv", "sentences_SP_EF_405.csv")


@dataclass(frozen=True)
class Team:
    """One shared database, and a root under which each "machine" has its own store folder."""

    url: str
    root: Path

    def cli(self, folder: str, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, store=self.root / folder, env={"LECTURE_RAG_DATABASE_URL": self.url})


@pytest.fixture(scope="module")
def team(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Team:
    """One database and an ingesting machine's folder, with two NURC lectures ingested and indexed."""
    team = Team(pg_server.new_database(), tmp_path_factory.mktemp("pg-team"))
    files = [str(shared("nurc-sp", "transcripts", name)) for name in LECTURES]
    result = team.cli("ingest", "ingest", *files)
    assert result.returncode == 0, result.stderr + result.stdout
    return team


def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return list(conn.execute(sql).fetchall())


def test_the_corpus_and_its_vectors_live_in_the_database(team: Team) -> None:
    url = team.url
    assert _rows(url, "SELECT video_id FROM videos ORDER BY video_id") == [("SP_EF_377",), ("SP_EF_405",)]
    [(segments,)] = _rows(url, "SELECT COUNT(*) FROM segments")
    [(vectors,)] = _rows(url, "SELECT COUNT(*) FROM vectors")
    assert segments > 10 and vectors >= segments  # windows and their passages, embedded once, shared
    status = json.loads(team.cli("outra-maquina", "db", "status", "--json").stdout)
    assert status["backend"] == "postgresql" and status["segments"] == segments
    assert status["schema"] == status["code_schema"] == SCHEMA_VERSION and "@" not in status["where"].split("//")[1][:1]


def test_another_machine_indexes_from_the_shared_cache_and_answers(team: Team) -> None:
    """A second folder builds its own index from the database without embedding anything again."""
    indexed = team.cli("replica", "index")
    assert indexed.returncode == 0, indexed.stderr
    assert "embed_s=0.0" in indexed.stdout
    hits = json.loads(team.cli("replica", "search", "o que é arte", "--json", "--k", "3").stdout)
    assert len(hits) == 3 and {h["video_id"] for h in hits} <= {"SP_EF_377", "SP_EF_405"}
    answer = json.loads(team.cli("replica", "ask", "o que é arte", "--llm", "none", "--format", "json").stdout)
    assert answer["answer"] and answer["references"]


def test_run_annotations_and_agreement_on_the_shared_database(team: Team, tmp_path: Path) -> None:
    questions = tmp_path / "perguntas.jsonl"
    questions.write_text("\n".join(QUESTIONS.read_text(encoding="utf-8").splitlines()[:3]) + "\n", encoding="utf-8")
    made = team.cli(
        "replica", "run", str(questions), "--name", "pg", "--llm", "none", "--judge-llm", "none", "--k", "2"
    )
    assert made.returncode == 0, made.stderr
    items = [json.loads(line) for line in questions.read_text(encoding="utf-8").splitlines()]
    labels = tmp_path / "rotulos.json"
    labels.write_text(json.dumps([{"qid": items[0]["id"], "label": "C"}, {"qid": items[1]["id"], "label": "I"}]))
    # the labels come in through the other machine: same database, same run
    imported = team.cli("ingest", "annotate", "import", "pg", str(labels), "--annotator", "bia")
    assert imported.returncode == 0, imported.stderr
    summary = json.loads(team.cli("replica", "agreement", "pg", "--json").stdout)
    assert summary["questions"] == 3 and summary["annotated"] >= 2
    assert _rows(team.url, "SELECT COUNT(*) FROM annotations WHERE run='pg' AND annotator='bia'") == [(2,)]
    again = team.cli(
        "ingest", "run", str(questions), "--name", "pg", "--llm", "none", "--judge-llm", "none", "--k", "2"
    )
    assert "3 já prontas" in again.stdout


def test_a_killed_ingest_leaves_the_database_consistent_and_a_rerun_completes(
    pg_server: PgServer, tmp_path: Path
) -> None:
    """Killed mid-file: the lecture being written is absent (one transaction per video), the rest whole."""
    url = pg_server.new_database()
    folder = tmp_path / "aulas"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\ncurta\n", encoding="utf-8")
    big_srt(folder / "c_grande.srt", 200_000)
    env = {"LECTURE_RAG_DATABASE_URL": url}
    proc = subprocess.Popen(
        [EXE, "ingest", str(folder), "--no-index", "--store", str(tmp_path / "s")],
        env=cli_env(env=env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    kill_when(proc, url, "SELECT COUNT(*) FROM videos", 2, timeout=60)
    proc.wait(10)
    assert _rows(url, "SELECT video_id FROM videos ORDER BY video_id") == [("a",), ("b",)]
    orphans = "SELECT COUNT(*) FROM segments s WHERE NOT EXISTS (SELECT 1 FROM videos v WHERE v.video_id=s.video_id)"
    assert _rows(url, orphans) == [(0,)]
    result = run_cli("ingest", str(folder), "--no-index", store=tmp_path / "s", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("sem mudança") == 2
    assert _rows(url, "SELECT COUNT(*) FROM videos") == [(3,)]


def test_a_newer_schema_is_refused_with_nothing_written(pg_server: PgServer, tmp_path: Path) -> None:
    url = pg_server.new_database()
    assert run_cli("db", "upgrade", store=tmp_path / "a", env={"LECTURE_RAG_DATABASE_URL": url}).returncode == 0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE meta SET value=%s WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    lecture = str(shared("nurc-sp", "transcripts", LECTURES[0]))
    result = run_cli("ingest", lecture, store=tmp_path / "a", env={"LECTURE_RAG_DATABASE_URL": url})
    assert result.returncode == 2 and "mais novo" in result.stderr
    assert _rows(url, "SELECT COUNT(*) FROM videos") == [(0,)]


def test_an_older_schema_is_upgraded_only_by_db_upgrade(pg_server: PgServer, tmp_path: Path) -> None:
    url = pg_server.new_database()
    env = {"LECTURE_RAG_DATABASE_URL": url}
    with psycopg.connect(url, autocommit=True) as conn:  # a database an older release created (schema 1)
        for statement in migrations("postgresql")[0]:
            conn.execute(statement)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    refused = run_cli("corpus", "list", store=tmp_path / "a", env=env)
    assert refused.returncode == 2 and "lecture-rag db upgrade" in refused.stderr
    upgraded = run_cli("db", "upgrade", store=tmp_path / "a", env=env)
    assert upgraded.returncode == 0 and f"1 → {SCHEMA_VERSION}" in upgraded.stdout
    assert run_cli("corpus", "list", store=tmp_path / "a", env=env).returncode == 0


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://ana:segredo@localhost/acervo", "URL de banco de dados inválida"),
        ("postgresql://ana:segredo@127.0.0.1:1/acervo", "Não foi possível usar o banco"),
    ],
)
def test_a_wrong_or_dead_database_stops_before_anything_is_written(url: str, says: str, tmp_path: Path) -> None:
    lecture = str(shared("nurc-sp", "transcripts", LECTURES[0]))
    result = run_cli("ingest", lecture, store=tmp_path / "acervo", env={"LECTURE_RAG_DATABASE_URL": url})
    assert result.returncode == 2 and says in result.stderr
    assert "segredo" not in result.stderr + result.stdout
    assert not (tmp_path / "acervo").exists()  # not even the local folder was created
