"""The embedded database: one SQLite file (WAL mode), the zero-setup default for the corpus, runs and cache.

Why SQLite: it is transactional (a killed ingest leaves the previous state
intact), needs no server, and lets several readers (CLI, web app) share one
store. Each thread gets its own connection (opened on first use), so a
worker thread that reads never shares a connection, and its transaction
state, with a thread that writes; WAL lets them run side by side, and a
writer waits for the write lock (30 s) instead of failing. Every write
transaction is ``BEGIN IMMEDIATE``: one writer at a time, so an exclusive
transaction needs nothing more. Locks between processes are ``flock``s on
files beside the database, released by the kernel when a process dies.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lecture_rag.errors import StoreError
from lecture_rag.store.database import Dialect, KeptLock, Params, after_commit
from lecture_rag.store.failures import corrupt_error, os_errors, rollback, sqlite_errors, write_protected

LOCKS_DIRNAME = "locks"
DAMAGED_ADVICE = "Restaure o arquivo de um backup (com os comandos parados) e rode o comando de novo."


class SqliteDatabase:
    """One SQLite file; ``what`` names it in messages ("o acervo", "o cache de embeddings")."""

    dialect: Dialect = "sqlite"

    def __init__(
        self, path: Path, what: str, *, read_only: bool = False, immutable: bool = False, advice: str = ""
    ) -> None:
        self.path = Path(path)
        self.what = what
        self.where = str(self.path)
        self.read_only = read_only
        self.advice = advice or DAMAGED_ADVICE
        self._immutable = immutable
        self._checked = False  # whether the file passed PRAGMA quick_check (once, before this process's first write)
        self._local = threading.local()
        self._open: list[sqlite3.Connection] = []
        self._open_lock = threading.Lock()

    @classmethod
    def at(cls, path: Path, what: str, *, read_only: bool = False, advice: str = "") -> SqliteDatabase:
        """The database file ``path``, read-only when asked or when it (or its folder) is write-protected.

        Nothing can write a protected file: with no WAL file left beside it,
        it is also opened immutable, so SQLite need not even create its ``-shm``.
        No connection is opened yet (the first use opens this thread's).
        """
        path = Path(path)
        protected = write_protected(path, path.parent)
        immutable = protected and not path.with_name(path.name + "-wal").exists()
        return cls(path, what, read_only=read_only or protected, immutable=immutable, advice=advice)

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection to the database (opened on first use)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, read_only=self.read_only, immutable=self._immutable)
            conn.row_factory = sqlite3.Row
            with self._open_lock:
                self._open.append(conn)
            self._local.conn = conn
        return conn

    def execute(self, sql: str, params: Params = (), /) -> CheckedCursor:
        with self._errors():
            return CheckedCursor(self.conn.execute(sql, params), self._errors)

    def has_table(self, name: str) -> bool:
        row = self.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone()
        return row is not None

    def _errors(self) -> AbstractContextManager[None]:
        """Storage failures and a damaged file, named (never a traceback): see :func:`sqlite_errors`."""
        return sqlite_errors(self.what, self.path, self.advice)

    def _check_whole(self, conn: sqlite3.Connection) -> None:
        """Refuse to write into a damaged file: ``PRAGMA quick_check`` once, before this process's first write.

        Why: SQLite goes on writing into a file whose other pages are damaged
        (it only fails on the pages it happens to read), burying the damage
        under new work. One check per process keeps the cost to one pass over the file.
        """
        if self._checked:
            return
        verdict = str(conn.execute("PRAGMA quick_check(1)").fetchone()[0])
        if verdict != "ok":
            raise corrupt_error(self.what, self.path, f"quick_check: {verdict}", self.advice)
        self._checked = True

    @contextmanager
    def transaction(self, *, exclusive: bool = False) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work: all of it lands, or none of it (``exclusive``: SQLite has one writer anyway).

        A storage failure (full disk, read-only store, I/O error) in the block
        or at COMMIT becomes a StorageError naming the cause. SQLite rolls back
        by itself after some of them, so the ROLLBACK here runs only while a
        transaction is still open, and its own failure never hides the first error.
        """
        conn = self.conn
        with self._errors():
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._check_whole(conn)
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                rollback(conn)
                raise
        after_commit()

    @contextmanager
    def lock(self, what: str, busy: str, *, wait: bool = False) -> Iterator[KeptLock]:
        """An ``flock`` named ``what`` under ``locks/`` beside the database (see :func:`file_lock`)."""
        with file_lock(self.path.parent, what, busy, wait=wait, label=self.what) as held:
            yield held

    def close(self) -> None:
        """Close every thread's connection (call once no thread uses the database any more)."""
        with self._open_lock:
            conns, self._open = self._open, []
        for conn in conns:
            conn.close()
        self._local = threading.local()


class CheckedCursor:
    """A cursor whose reads name a damaged file (rows are read lazily, so the damage may show only then)."""

    def __init__(self, cursor: sqlite3.Cursor, errors: Callable[[], AbstractContextManager[None]]) -> None:
        self._cursor = cursor
        self._errors = errors

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def fetchone(self) -> Any:
        with self._errors():
            return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        with self._errors():
            return self._cursor.fetchall()

    def __iter__(self) -> Iterator[Any]:
        with self._errors():
            yield from self._cursor


@contextmanager
def file_lock(folder: Path, what: str, busy: str, *, wait: bool = False, label: str = "o acervo") -> Iterator[KeptLock]:
    """Hold an inter-process lock named ``what`` for the block; if another process holds it, raise ``busy``.

    With ``wait=True`` the block waits for the other process instead. The
    lock is an ``flock`` on a file under ``folder/locks/``, so the operating
    system releases it when its process dies: a killed run never leaves a
    stale lock behind.
    """
    locks = folder / LOCKS_DIRNAME
    path = locks / (hashlib.sha256(what.encode()).hexdigest()[:24] + ".lock")
    with os_errors(label, folder):
        locks.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise StoreError(busy) from None
            raise
        yield KeptLock()  # the kernel keeps an flock as long as the process lives
    finally:
        os.close(fd)


def connect(path: Path, *, read_only: bool = False, immutable: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), set up the way every database here is.

    WAL (several readers beside one writer) when writable, foreign keys on,
    ``synchronous=NORMAL``. ``read_only`` uses SQLite's ``mode=ro``; ``immutable``
    tells SQLite that nothing can change the file (a write-protected store with
    no WAL file), so it reads it without creating lock files beside it.
    """
    if read_only:
        uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro" + ("&immutable=1" if immutable else "")
        conn = sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False, isolation_level=None)
    else:
        conn = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn
