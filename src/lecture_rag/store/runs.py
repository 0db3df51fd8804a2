"""Evaluation runs in the store: answers, judgments and annotations per question.

Everything a run produces is written per question in its own transaction,
keyed by (run, question id), so an interrupted run resumes by doing only
what is missing and can never duplicate a row. Rows hold the records'
wire form (:mod:`lecture_rag.wire`) and come back as typed records.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from lecture_rag.errors import LectureRagError
from lecture_rag.records import Annotation, Answer, Judgment, QuestionMeta, RunConfig, RunItem
from lecture_rag.store.corpus import Store
from lecture_rag.store.database import HeldLock
from lecture_rag.store.failures import StorageError
from lecture_rag.wire import dumps, from_data, loads, to_data

# A run name is one segment of the web app's addresses (/runs/NAME/annotate): no '/', no '.' or '..',
# nothing a URL would reinterpret. Letters include accented ones (\w is Unicode-aware).
RUN_NAME = re.compile(r"\w[\w.-]{0,99}")


def check_run_name(name: str) -> None:
    """Refuse a name for a new run that the web app could not open."""
    if not RUN_NAME.fullmatch(name):
        raise LectureRagError(
            f"Nome de rodada inválido: {name!r}. Use só letras, números, '_', '-' e '.', começando por letra "
            "ou número, com até 100 caracteres (ex.: base-2024.1): o nome vira parte do endereço da página web."
        )


#: The longest annotator name (the web API's limit, and the one every other way in shares).
MAX_ANNOTATOR_CHARS = 80


def annotator_name(value: str) -> str:
    """An annotator's name as stored: runs of whitespace made one space; empty, too long or control characters refused.

    The one check for every way a label comes in (the web API, ``annotate``
    in the terminal, ``annotate import``, a question file): a name the web
    app would refuse must never be stored by another door.
    """
    name = " ".join(value.split())
    if not name or len(name) > MAX_ANNOTATOR_CHARS or any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in name):
        shown = name[:40] + ("…" if len(name) > 40 else "")
        raise LectureRagError(
            f"Nome de anotador inválido ({shown!r}): use de 1 a {MAX_ANNOTATOR_CHARS} caracteres visíveis, "
            "sem caracteres de controle."
        )
    return name


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One line of the run list: name, when, size and how much is annotated."""

    name: str
    created_at: str
    items: int
    annotated: int
    config: RunConfig


class RunStore:
    """Runs, their items, judgments and annotations, in the store's database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._held: dict[str, HeldLock] = {}  # runs this process holds (running()), checked before each write

    # -- runs ---------------------------------------------------------------
    def get_config(self, name: str) -> RunConfig | None:
        row = self.store.db.execute("SELECT config FROM runs WHERE name=?", (name,)).fetchone()
        return None if row is None else from_data(RunConfig, json.loads(row[0]))

    def require(self, name: str) -> RunConfig:
        """The run's configuration snapshot; a missing run is an error that lists the runs there are."""
        config = self.get_config(name)
        if config is None:
            known = ", ".join(self.names()) or "nenhuma"
            raise LectureRagError(f"Rodada '{name}' não existe (rodadas: {known}). Crie com 'lecture-rag run'.")
        return config

    def names(self) -> list[str]:
        return [str(r[0]) for r in self.store.db.execute("SELECT name FROM runs ORDER BY created_at, name")]

    def summaries(self) -> list[RunSummary]:
        rows = self.store.db.execute(
            """SELECT r.name, r.created_at, r.config,
                      (SELECT COUNT(*) FROM run_items i WHERE i.run=r.name),
                      (SELECT COUNT(DISTINCT qid) FROM annotations a WHERE a.run=r.name)
               FROM runs r ORDER BY r.created_at, r.name"""
        ).fetchall()
        return [RunSummary(r[0], r[1], int(r[3]), int(r[4]), from_data(RunConfig, json.loads(r[2]))) for r in rows]

    def start(self, name: str, config: RunConfig) -> bool:
        """Create the run, or check that a rerun uses the same configuration.

        Returns True when the run is new. Resuming with another configuration
        would mix two experiments under one name, so it is refused. Two
        processes starting the same new run race on one insert: one creates
        it, the other finds it and compares, never an integrity error. A new
        run's name must pass :func:`check_run_name`; runs stored before that
        rule keep their names and can still be resumed.
        """
        if self.get_config(name) is None:
            check_run_name(name)
        wanted: dict[str, object] = to_data(config)
        text = json.dumps(wanted, sort_keys=True)
        with self.store.transaction() as conn:
            created = conn.execute(
                "INSERT INTO runs(name, created_at, config) VALUES(?,?,?) ON CONFLICT(name) DO NOTHING",
                (name, _now(), text),
            ).rowcount
        if created:
            return True
        existing: dict[str, object] = to_data(self.require(name))
        diff = sorted(k for k in set(existing) | set(wanted) if existing.get(k) != wanted.get(k))
        if diff:
            raise LectureRagError(
                f"A rodada '{name}' já existe com outra configuração ({', '.join(diff)}). "
                "Use outro --name para um novo experimento, ou os mesmos parâmetros para retomá-la."
            )
        return False

    @contextmanager
    def running(self, name: str) -> Iterator[None]:
        """Hold the run for this process: a second ``run`` of the same name at once is refused clearly."""
        busy = (
            f"A rodada '{name}' já está sendo executada por outro processo. Espere ele terminar "
            "(ou interrompa-o) e rode de novo: o que ele já gravou é retomado, não refeito."
        )
        with self.store.exclusive(f"run:{name}", busy, shared=True) as held:
            self._held[name] = held
            try:
                yield
            finally:
                self._held.pop(name, None)

    def _still_held(self, name: str) -> None:
        """Before writing a run's work: the run's lock is still ours (a server restart loses it)."""
        held = self._held.get(name)
        if held is not None:
            held.check()

    def _held_write(self, name: str, write: Callable[[], None]) -> None:
        """Write a held run's work; if the server dropped the connection mid-write, retake the lock and retry once.

        Why: a server restart can kill the pooled connection between the lock
        check and the commit. The transaction was rolled back and the writes
        are upserts, so the retry is safe; the lock check before it either
        takes the lock again or stops the run because another process took it.
        """
        self._still_held(name)
        try:
            write()
        except StorageError:
            if name not in self._held:
                raise
            self._still_held(name)
            write()

    # -- items and judgments ------------------------------------------------
    def answered(self, name: str) -> set[str]:
        return {str(r[0]) for r in self.store.db.execute("SELECT qid FROM run_items WHERE run=?", (name,))}

    def judged(self, name: str) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for qid, kind in self.store.db.execute("SELECT qid, kind FROM judgments WHERE run=?", (name,)):
            out.setdefault(str(qid), set()).add(str(kind))
        return out

    def save_item(
        self,
        name: str,
        qid: str,
        position: int,
        question: str,
        meta: QuestionMeta,
        answer: Answer,
        label: tuple[str, str] | None = None,
    ) -> None:
        """One item; ``label`` = (annotator, label) stores a person's label with it, in the same transaction."""

        def write() -> None:
            self._write_item(name, qid, position, question, dumps(meta), dumps(answer), label)

        self._held_write(name, write)

    def _write_item(
        self, name: str, qid: str, position: int, question: str, meta: str, answer: str, label: tuple[str, str] | None
    ) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                """INSERT INTO run_items(run, qid, position, question, meta, answer, answered_at)
                   VALUES(?,?,?,?,?,?,?)
                   ON CONFLICT(run, qid) DO UPDATE SET answer=excluded.answer, meta=excluded.meta,
                     answered_at=excluded.answered_at""",
                (name, qid, position, question, meta, answer, _now()),
            )
            if label is not None:
                conn.execute(
                    """INSERT INTO annotations(run, qid, annotator, label, comment, created_at) VALUES(?,?,?,?,?,?)
                       ON CONFLICT(run, qid, annotator) DO UPDATE SET label=excluded.label""",
                    (name, qid, label[0], label[1], "", _now()),
                )

    def save_judgments(self, name: str, qid: str, judgments: Sequence[Judgment], suffix: str = "") -> None:
        """All judgments of one question in one transaction (``kind`` is the key).

        ``suffix`` stores another verdict of the same judge on the same item
        (``auto_label#2``, for self-consistency) beside the first; it comes
        back under that key in :meth:`items`, where nothing else looks.
        """
        self._held_write(name, lambda: self._write_judgments(name, qid, judgments, suffix))

    def _write_judgments(self, name: str, qid: str, judgments: Sequence[Judgment], suffix: str) -> None:
        with self.store.transaction() as conn:
            for j in judgments:
                conn.execute(
                    """INSERT INTO judgments(run, qid, kind, score, label, parsed, data, created_at)
                       VALUES(?,?,?,?,?,?,?,?)
                       ON CONFLICT(run, qid, kind) DO UPDATE SET score=excluded.score, label=excluded.label,
                         parsed=excluded.parsed, data=excluded.data, created_at=excluded.created_at""",
                    (name, qid, j.kind + suffix, j.score, j.label, int(j.parsed), dumps(j), _now()),
                )

    def items(self, name: str) -> list[RunItem]:
        """Every item of the run in question-file order, with its judgments and annotations."""
        self.require(name)
        db = self.store.db
        items = {
            str(r[0]): RunItem(str(r[0]), int(r[1]), str(r[2]), loads(QuestionMeta, r[3]), loads(Answer, r[4]))
            for r in db.execute(
                "SELECT qid, position, question, meta, answer FROM run_items WHERE run=? ORDER BY position",
                (name,),
            )
        }
        for qid, kind, data in db.execute("SELECT qid, kind, data FROM judgments WHERE run=?", (name,)):
            if qid in items:
                items[qid].judgments[kind] = loads(Judgment, data)
        for qid, annotator, label, comment, at in db.execute(
            "SELECT qid, annotator, label, comment, created_at FROM annotations WHERE run=? ORDER BY created_at",
            (name,),
        ):
            if qid in items:
                items[qid].annotations[annotator] = Annotation(label, comment, at)
        return list(items.values())

    # -- annotations --------------------------------------------------------
    def annotate(self, name: str, qid: str, annotator: str, label: str, comment: str = "") -> None:
        """A person's label for one item; relabelling by the same person replaces it."""
        self.annotate_many(name, [(qid, annotator, label, comment)])

    def annotate_many(self, name: str, labels: Sequence[tuple[str, str, str, str]]) -> None:
        """Labels (qid, annotator, label, comment) in one transaction: all of them are stored, or none.

        Why one transaction: an import killed or stopped by a full disk half
        way must leave the run as it was, not with the first rows of the file.
        Every annotator name passes :func:`annotator_name` first.
        """
        rows = [(qid, annotator_name(annotator), label, comment) for qid, annotator, label, comment in labels]
        with self.store.transaction() as conn:
            known = {str(r[0]) for r in conn.execute("SELECT qid FROM run_items WHERE run=?", (name,))}
            for qid, *_ in rows:
                if qid not in known:
                    raise LectureRagError(f"A rodada '{name}' não tem a pergunta '{qid}'.")
            now = _now()
            conn.executemany(
                """INSERT INTO annotations(run, qid, annotator, label, comment, created_at) VALUES(?,?,?,?,?,?)
                   ON CONFLICT(run, qid, annotator) DO UPDATE SET label=excluded.label,
                     comment=excluded.comment, created_at=excluded.created_at""",
                [(name, qid, who, label, comment, now) for qid, who, label, comment in rows],
            )
