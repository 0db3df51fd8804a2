"""Evaluation runs in the store: answers, judgments and annotations per question.

Everything a run produces is written per question in its own transaction,
keyed by (run, question id), so an interrupted run resumes by doing only
what is missing and can never duplicate a row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lecture_rag.errors import LectureRagError
from lecture_rag.evaluate.labels import LabelScheme, scheme_of_run
from lecture_rag.index.store import Store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    name TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    config TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS run_items (
    run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE,
    qid TEXT NOT NULL,
    position INTEGER NOT NULL,
    question TEXT NOT NULL,
    meta TEXT NOT NULL,
    answer TEXT NOT NULL,
    answered_at TEXT NOT NULL,
    PRIMARY KEY (run, qid)
);
CREATE TABLE IF NOT EXISTS judgments (
    run TEXT NOT NULL,
    qid TEXT NOT NULL,
    kind TEXT NOT NULL,
    score REAL,
    label TEXT,
    parsed INTEGER NOT NULL,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (run, qid, kind),
    FOREIGN KEY (run, qid) REFERENCES run_items(run, qid) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS annotations (
    run TEXT NOT NULL,
    qid TEXT NOT NULL,
    annotator TEXT NOT NULL,
    label TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    PRIMARY KEY (run, qid, annotator)
);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(slots=True)
class RunItem:
    """One question of a run with everything stored about it."""

    qid: str
    position: int
    question: str
    meta: dict[str, Any]
    answer: dict[str, Any]
    judgments: dict[str, dict[str, Any]] = field(default_factory=dict)
    annotations: dict[str, dict[str, str]] = field(default_factory=dict)


class RunStore:
    """Runs, their items, judgments and annotations, in the store's database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.conn = store.conn
        self.conn.executescript(_SCHEMA)

    # -- runs ---------------------------------------------------------------
    def get_config(self, name: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT config FROM runs WHERE name=?", (name,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def scheme(self, name: str) -> LabelScheme:
        """The label scheme the run was made with (the default for runs that predate stored schemes)."""
        return scheme_of_run(self.require(name))

    def require(self, name: str) -> dict[str, Any]:
        config = self.get_config(name)
        if config is None:
            known = ", ".join(self.names()) or "nenhuma"
            raise LectureRagError(f"Rodada '{name}' não existe (rodadas: {known}). Crie com 'lecture-rag run'.")
        return config

    def names(self) -> list[str]:
        return [str(r[0]) for r in self.conn.execute("SELECT name FROM runs ORDER BY created_at, name")]

    def summaries(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            """SELECT r.name, r.created_at, r.config,
                      (SELECT COUNT(*) FROM run_items i WHERE i.run=r.name),
                      (SELECT COUNT(DISTINCT qid) FROM annotations a WHERE a.run=r.name)
               FROM runs r ORDER BY r.created_at, r.name"""
        ).fetchall()
        return [
            {"name": r[0], "created_at": r[1], "config": json.loads(r[2]), "items": r[3], "annotated": r[4]}
            for r in rows
        ]

    def start(self, name: str, config: dict[str, Any]) -> bool:
        """Create the run, or check that a rerun uses the same configuration.

        Returns True when the run is new. Resuming with another configuration
        would mix two experiments under one name, so it is refused.
        """
        existing = self.get_config(name)
        if existing is None:
            with self.store.transaction() as conn:
                conn.execute(
                    "INSERT INTO runs(name, created_at, config) VALUES(?,?,?)",
                    (name, _now(), json.dumps(config, sort_keys=True)),
                )
            return True
        diff = sorted(k for k in set(existing) | set(config) if existing.get(k) != config.get(k))
        if diff:
            raise LectureRagError(
                f"A rodada '{name}' já existe com outra configuração ({', '.join(diff)}). "
                "Use outro --name para um novo experimento, ou os mesmos parâmetros para retomá-la."
            )
        return False

    def delete(self, name: str) -> None:
        with self.store.transaction() as conn:
            for table in ("annotations", "judgments", "run_items"):
                conn.execute(f"DELETE FROM {table} WHERE run=?", (name,))
            conn.execute("DELETE FROM runs WHERE name=?", (name,))

    # -- items and judgments ------------------------------------------------
    def answered(self, name: str) -> set[str]:
        return {str(r[0]) for r in self.conn.execute("SELECT qid FROM run_items WHERE run=?", (name,))}

    def judged(self, name: str) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for qid, kind in self.conn.execute("SELECT qid, kind FROM judgments WHERE run=?", (name,)):
            out.setdefault(str(qid), set()).add(str(kind))
        return out

    def save_item(
        self, name: str, qid: str, position: int, question: str, meta: dict[str, Any], answer: dict[str, Any]
    ) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                """INSERT INTO run_items(run, qid, position, question, meta, answer, answered_at)
                   VALUES(?,?,?,?,?,?,?)
                   ON CONFLICT(run, qid) DO UPDATE SET answer=excluded.answer, meta=excluded.meta,
                     answered_at=excluded.answered_at""",
                (
                    name,
                    qid,
                    position,
                    question,
                    json.dumps(meta, ensure_ascii=False),
                    json.dumps(answer, ensure_ascii=False),
                    _now(),
                ),
            )

    def save_judgments(self, name: str, qid: str, judgments: list[dict[str, Any]]) -> None:
        """All judgments of one question in one transaction (``kind`` is the key)."""
        with self.store.transaction() as conn:
            for j in judgments:
                conn.execute(
                    """INSERT INTO judgments(run, qid, kind, score, label, parsed, data, created_at)
                       VALUES(?,?,?,?,?,?,?,?)
                       ON CONFLICT(run, qid, kind) DO UPDATE SET score=excluded.score, label=excluded.label,
                         parsed=excluded.parsed, data=excluded.data, created_at=excluded.created_at""",
                    (
                        name,
                        qid,
                        j["kind"],
                        j.get("score"),
                        j.get("label"),
                        int(bool(j.get("parsed"))),
                        json.dumps(j, ensure_ascii=False),
                        _now(),
                    ),
                )

    def items(self, name: str) -> list[RunItem]:
        self.require(name)
        items = {
            str(r[0]): RunItem(str(r[0]), int(r[1]), str(r[2]), json.loads(r[3]), json.loads(r[4]))
            for r in self.conn.execute(
                "SELECT qid, position, question, meta, answer FROM run_items WHERE run=? ORDER BY position",
                (name,),
            )
        }
        for qid, kind, data in self.conn.execute("SELECT qid, kind, data FROM judgments WHERE run=?", (name,)):
            if qid in items:
                items[qid].judgments[kind] = json.loads(data)
        for qid, annotator, label, comment, at in self.conn.execute(
            "SELECT qid, annotator, label, comment, created_at FROM annotations WHERE run=? ORDER BY created_at",
            (name,),
        ):
            if qid in items:
                items[qid].annotations[annotator] = {"label": label, "comment": comment, "at": at}
        return list(items.values())

    # -- annotations --------------------------------------------------------
    def annotate(self, name: str, qid: str, annotator: str, label: str, comment: str = "") -> None:
        """A person's label for one item; relabelling by the same person replaces it."""
        with self.store.transaction() as conn:
            exists = conn.execute("SELECT 1 FROM run_items WHERE run=? AND qid=?", (name, qid)).fetchone()
            if not exists:
                raise LectureRagError(f"A rodada '{name}' não tem a pergunta '{qid}'.")
            conn.execute(
                """INSERT INTO annotations(run, qid, annotator, label, comment, created_at) VALUES(?,?,?,?,?,?)
                   ON CONFLICT(run, qid, annotator) DO UPDATE SET label=excluded.label,
                     comment=excluded.comment, created_at=excluded.created_at""",
                (name, qid, annotator, label, comment, _now()),
            )
