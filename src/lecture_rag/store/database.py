"""What the store needs from a SQL database, and the two databases that provide it (SQLite, PostgreSQL).

Why a protocol at this level: the corpus, the runs and the embedding cache
are the same tables and the same SQL on both; what differs is how a
connection is had (one per thread on a file, a pool on a server), how a
transaction is made strict (SQLite's write lock, PostgreSQL's advisory
lock), how processes exclude each other (``flock`` beside the file, an
advisory lock on the server) and how a failure is named. SQL is written
once, in SQLite's spelling with ``?`` placeholders; the PostgreSQL side
translates the placeholders and the few type names (:mod:`lecture_rag.store.schema`).
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol

Dialect = Literal["sqlite", "postgresql"]
Params = Sequence[Any]
#: A result row, readable by position and by column name (``sqlite3.Row``, or the PostgreSQL side's ``Row``).
Row = Any


class Cursor(Protocol):
    """The part of a DB-API cursor the store reads: rows (by position or column name) and the row count."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """A connection inside one transaction."""

    def execute(self, sql: str, params: Params = ..., /) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Params], /) -> Any: ...


class HeldLock(Protocol):
    """A named lock this process holds (what :meth:`Database.lock` yields)."""

    def check(self) -> None:
        """Make sure the lock is still ours before a write: re-take it if it was lost, else raise StoreError."""


class KeptLock:
    """A lock that cannot be lost while its process lives (an ``flock``): nothing to check."""

    def check(self) -> None:
        return None


class Database(Protocol):
    """One database the store lives in.

    ``execute`` runs one statement on its own (reads); ``transaction`` holds
    a connection for a unit of work that lands whole or not at all, and with
    ``exclusive=True`` also excludes every other exclusive transaction of
    every process (corpus writes and migrations, as strict as SQLite's
    single writer); ``lock`` holds a named lock across processes for a block
    (one run of a name at a time), which a writer checks before each write
    (:meth:`HeldLock.check`: a server's lock dies with its connection).
    """

    dialect: Dialect
    where: str  # what messages call it: a file path, or the server and database (never the password)
    read_only: bool

    def execute(self, sql: str, params: Params = (), /) -> Cursor: ...

    def transaction(self, *, exclusive: bool = False) -> AbstractContextManager[Connection]: ...

    def lock(self, what: str, busy: str, *, wait: bool = False) -> AbstractContextManager[HeldLock]: ...

    def has_table(self, name: str) -> bool: ...

    def close(self) -> None: ...


def is_database_url(url: str) -> bool:
    """Whether a ``[store] url`` names a server database (anything else non-empty is refused by the opener)."""
    return url.startswith(("postgresql://", "postgres://"))


#: Test hook, for fault injection only: with this variable set to N, the process kills itself (SIGKILL, as
#: a power cut or the OOM killer would) right after its Nth committed transaction, so the tests can stop a
#: real command between every pair of its transactions and check what a rerun finds. Unset: nothing happens.
FAULT_KILL_AFTER_COMMITS = "LECTURE_RAG_FAULT_KILL_AFTER_COMMITS"
_commits = itertools.count(1)
_commits_lock = threading.Lock()


def after_commit() -> None:
    """Called by each database after every COMMIT: the fault-injection point of :data:`FAULT_KILL_AFTER_COMMITS`."""
    kill_after = os.environ.get(FAULT_KILL_AFTER_COMMITS)
    if not kill_after:
        return
    with _commits_lock:
        if next(_commits) == int(kill_after):
            os.kill(os.getpid(), signal.SIGKILL)
