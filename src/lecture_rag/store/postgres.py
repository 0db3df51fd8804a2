"""The shared database: PostgreSQL, for many processes on many machines (web replicas, batch workers, CLIs).

Why PostgreSQL beside SQLite: one SQLite file serialises every writer on one
machine; a university's annotators, replicas and batch jobs write at once
from several. The SQL is the store's own (written once, ``?`` placeholders,
translated here); what this module adds is PostgreSQL's way of doing what
SQLite does by being a file:

- connections come from a pool (``[store] pool_size`` per process), checked
  before use, so a server restart costs one failed statement, not a dead process;
- reads run in autocommit; a transaction holds one pooled connection;
- an *exclusive* transaction (corpus writes, migrations) first takes one
  transaction-scoped advisory lock, so corpus writes are serialised across
  processes exactly as SQLite's single writer serialises them (two ingests of
  one lecture never interleave their segments);
- named locks (one run of a name at a time) are session advisory locks on a
  connection of their own, released by the server when the holder dies, and
  checked before each write (a restart ends them: the holder takes its lock
  again, or stops if another process took it);
- a server that cannot be reached, a wrong password, a missing database, a
  full disk become one :class:`~lecture_rag.errors.StoreError` that names the
  server (never the password) and says what to do;
- a server that goes away fails callers in seconds, not after the pool's
  whole wait: a caller without a pooled connection after
  :data:`FAST_ACQUIRE_S` connects once on its own; if that fails the server
  is noted unreachable and, for :data:`DOWN_RECHECK_S`, every caller fails at
  once (a web server's ``/api/health`` answers 503 in seconds). A caller
  that finds the server up again waits for the pool as before, which
  reconnects by itself.
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
import psycopg.errors
from psycopg_pool import ConnectionPool, PoolTimeout

from lecture_rag.config import env_var
from lecture_rag.errors import StoreError
from lecture_rag.store.database import Dialect, Params, after_commit, is_database_url
from lecture_rag.store.failures import StorageError

CONNECT_TIMEOUT = 5  # seconds to reach the server before saying it does not answer
POOL_TIMEOUT = 60.0  # seconds to wait for a pooled connection while the server answers (others hold them all)
FAST_ACQUIRE_S = 2.0  # after this long without a pooled connection, ask whether the server answers at all
DOWN_RECHECK_S = 1.0  # a server found unreachable is not asked again for this long: callers fail at once
RELOCK_SECONDS = 60.0  # how long a lock holder waits for a restarting server before it stops (the pool's wait)
EXCLUSIVE_KEY = 0x6C725F636F7270  # advisory lock of exclusive transactions ("lr_corp")


class Row(tuple[Any, ...]):
    """A row readable by position and by column name, as ``sqlite3.Row`` is (one shape for both databases)."""

    _names: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


def _row_factory(cursor: Any) -> Any:
    names = {col.name: i for i, col in enumerate(cursor.description or ())}

    def make(values: Sequence[Any]) -> Row:
        row = Row(values)
        row._names = names
        return row

    return make


class Result:
    """The rows of one statement, read whole before its connection goes back to the pool."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return list(self._rows)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)


@functools.lru_cache(maxsize=512)
def translate(sql: str) -> str:
    """SQLite's ``?`` placeholders in psycopg's spelling (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _run(conn: psycopg.Connection[Any], sql: str, params: Params) -> Result:
    cur = conn.execute(translate(sql), tuple(params))
    rows = cur.fetchall() if cur.description is not None else []
    return Result(rows, cur.rowcount)


class _Transaction:
    """The connection of one open transaction, with the store's SQL spelling."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Params = (), /) -> Result:
        return _run(self._conn, sql, params)

    def executemany(self, sql: str, rows: Iterable[Params], /) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(translate(sql), [tuple(r) for r in rows])


def _authority_split(url: str) -> tuple[str, str, str]:
    """(scheme, user info, the rest) of a URL, the user info ending at the *last* '@'.

    Why not ``urlsplit``: a password holding a raw '@', '/', '?' or '#' makes
    it end the user info too early, and part of the password becomes the
    "server" or the "path" that messages show. The last '@' is always the
    user info's end (at worst a query's '@' hides a little more than needed).
    """
    scheme, _, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    return scheme, userinfo if at else "", host if at else rest


def password_of(url: str) -> str:
    """The password a URL carries ('' for none), as written and percent-decoded pieces are redacted from."""
    userinfo = _authority_split(url)[1]
    return userinfo.partition(":")[2]


def redact(text: str, url: str) -> str:
    """``text`` without the URL's password nor any piece of it (libpq quotes the pieces it misread as a host).

    Pieces shorter than 4 characters are left (they would blank ordinary words and reveal little).
    """
    secret = password_of(url)
    if not secret:
        return text
    pieces = {p for p in (*re.split(r"[@/:?#&=%]", secret), *re.split(r"[@/:?#&=]", unquote(secret))) if len(p) >= 4}
    for piece in sorted({secret, unquote(secret), *pieces}, key=len, reverse=True):
        text = text.replace(piece, "***")
    return text


def safe_url(url: str) -> str:
    """The URL as messages show it: scheme, user, server and database, never the password (nor a piece of it)."""
    scheme, userinfo, rest = _authority_split(url)
    user = userinfo.partition(":")[0]
    parts = urlsplit(f"{scheme}://{rest}")
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that is not a number: shown as written
        port = ":" + parts.netloc.rsplit(":", 1)[-1]
    shown = f"{scheme}://{user + '@' if user else ''}{parts.hostname or ''}{port}{parts.path}"
    if not parts.hostname and "host=" in parts.query:  # a Unix socket folder
        shown += f" (socket em {parts.query.split('host=', 1)[1].split('&', 1)[0]})"
    return redact(shown, url)


def check_url(url: str) -> None:
    """Refuse what cannot be a PostgreSQL URL before trying to connect (a typo, another database's scheme)."""
    if not is_database_url(url):
        raise StoreError(
            f"URL de banco de dados inválida: {url.split('://', 1)[0] + '://…' if '://' in url else '(oculta)'}. "
            f"Use postgresql://USUÁRIO:SENHA@SERVIDOR:PORTA/BANCO em {env_var('store', 'url')} ou em [store] url "
            "(ou deixe vazio para o SQLite do diretório do acervo); uma senha com @, /, ?, # ou % vai "
            "codificada (%40, %2F, %3F, %23, %25). Nada foi gravado."
        )
    scheme, _, rest = _authority_split(url)
    try:
        parts = urlsplit(f"{scheme}://{rest}")
        _ = parts.port  # a non-numeric port raises here
    except ValueError as exc:
        raise StoreError(
            f"URL de banco de dados malformada ({redact(str(exc), url)}): {safe_url(url)}. Nada foi gravado."
        ) from None
    if not parts.path.strip("/"):
        raise StoreError(
            f"A URL {safe_url(url)} não diz qual banco usar: termine-a com /NOME_DO_BANCO. Nada foi gravado."
        )
    if any(ch in password_of(url) for ch in "@/?#"):
        raise StoreError(
            f"A senha da URL {safe_url(url)} tem um caractere reservado (@, /, ? ou #) sem codificar: escreva-o "
            "como %40, %2F, %3F ou %23 (ex.: postgresql://ana:p%40ss@servidor/banco). Nada foi gravado."
        )


class PostgresDatabase:
    """A PostgreSQL database reached through a connection pool."""

    dialect: Dialect = "postgresql"
    read_only = False

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        """Check the URL, reach the server once (to name what is wrong precisely), then open the pool."""
        check_url(url)
        self.url = url
        self.where = safe_url(url)
        with self._errors():
            probe = psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT, autocommit=True)
            probe.close()
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "row_factory": _row_factory, "connect_timeout": CONNECT_TIMEOUT},
            check=ConnectionPool.check_connection,
            open=False,
            timeout=POOL_TIMEOUT,
            name="lecture-rag",
        )
        self._down_until = 0.0  # monotonic time until which the server counts as unreachable
        self._down_error: psycopg.OperationalError | None = None
        self._down_lock = threading.Lock()
        with self._errors():
            self._pool.open(wait=True, timeout=30)

    def execute(self, sql: str, params: Params = (), /) -> Result:
        with self._errors(), self._connection() as conn:
            return _run(conn, sql, params)

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection; fails within seconds when the server does not answer (see module docstring)."""
        if time.monotonic() < self._down_until:
            self._probe()  # raises while the server is still down
        try:
            conn = self._pool.getconn(timeout=FAST_ACQUIRE_S)
        except PoolTimeout:
            self._probe()
            conn = self._pool.getconn(timeout=POOL_TIMEOUT - FAST_ACQUIRE_S)
        try:
            with conn:  # the pool's own behaviour: commit or roll back, keep the connection open
                yield conn
        finally:
            self._pool.putconn(conn)

    def _probe(self) -> None:
        """Connect once outside the pool: raise the server's error (and note it down) if it does not answer."""
        with self._down_lock:
            if time.monotonic() < self._down_until and self._down_error is not None:
                raise psycopg.OperationalError(str(self._down_error))
            try:
                psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT, autocommit=True).close()
            except psycopg.OperationalError as exc:
                self._down_until = time.monotonic() + DOWN_RECHECK_S
                self._down_error = exc
                raise
            self._down_until, self._down_error = 0.0, None

    def has_table(self, name: str) -> bool:
        row = self.execute("SELECT to_regclass(?) IS NOT NULL", (name,)).fetchone()
        return bool(row[0])

    @contextmanager
    def transaction(self, *, exclusive: bool = False) -> Iterator[_Transaction]:
        """One atomic unit of work on one pooled connection; ``exclusive`` serialises it with every other."""
        with self._errors(), self._connection() as conn, conn.transaction():
            if exclusive:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (EXCLUSIVE_KEY,))
            yield _Transaction(conn)
        after_commit()

    @contextmanager
    def lock(self, what: str, busy: str, *, wait: bool = False) -> Iterator[SessionLock]:
        """A session advisory lock named ``what``, on a connection of its own (the server frees it if we die).

        The lock lives only as long as that connection: a server restart ends
        it. The holder calls :meth:`SessionLock.check` before each write, which
        takes it again on a new connection, or stops if another process took it meanwhile.
        """
        held = SessionLock(self, lock_key(what), busy)
        held.acquire(wait=wait)
        try:
            yield held
        finally:
            held.release()

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Name what went wrong with the server; a statement's own error (a bug, a constraint) passes as it is.

        Every message goes through :func:`redact`: no piece of the password, whatever libpq quoted.
        """
        try:
            yield
        except PoolTimeout as exc:
            raise StorageError(
                redact(
                    f"O banco {self.where} não respondeu a tempo ({exc}). Confira se o servidor PostgreSQL está no "
                    "ar e aceita conexões; nada foi gravado pela operação interrompida.",
                    self.url,
                )
            ) from exc
        except psycopg.errors.DiskFull as exc:
            raise StorageError(
                redact(
                    f"O servidor PostgreSQL {self.where} está sem espaço em disco ({exc}). A operação foi desfeita; "
                    "libere espaço no servidor e rode o comando de novo.",
                    self.url,
                )
            ) from exc
        except (psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege) as exc:
            raise StorageError(
                redact(
                    f"O banco {self.where} não aceita gravação por este usuário ({exc}). Use um usuário com "
                    "permissão de escrita (ou o servidor primário, não uma réplica de leitura); nada foi gravado.",
                    self.url,
                )
            ) from exc
        except psycopg.OperationalError as exc:
            raise StorageError(redact(_connection_problem(self.where, exc), self.url)) from exc


def lock_key(what: str) -> int:
    """The advisory lock key of a lock name (64 bits of its hash)."""
    return int.from_bytes(hashlib.sha256(what.encode()).digest()[:8], "big", signed=True)


class SessionLock:
    """A session advisory lock held on its own connection, checked (and re-taken if lost) before each write.

    Why the check: after a server restart the lock is gone with the
    connection while this process goes on writing through its pool; a
    second process could then take the lock and redo the same work.
    """

    def __init__(self, database: PostgresDatabase, key: int, busy: str) -> None:
        self._database = database
        self._key = key
        self._busy = busy
        self._conn: psycopg.Connection[Any] | None = None

    def acquire(self, *, wait: bool = False) -> None:
        with self._database._errors():
            self._conn = psycopg.connect(self._database.url, connect_timeout=CONNECT_TIMEOUT, autocommit=True)
        with self._database._errors():
            if wait:
                self._conn.execute("SELECT pg_advisory_lock(%s)", (self._key,))
                return
            got = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
        if not (got and got[0]):
            self.release()
            raise StoreError(self._busy)

    def check(self) -> None:
        """Still ours (its connection answers): go on. Lost with the connection: take it again, waiting for
        the server up to :data:`RELOCK_SECONDS`; taken by another process meanwhile: stop with a clear message."""
        if self._conn is not None and not self._conn.closed:
            try:
                self._conn.execute("SELECT 1")
                return
            except psycopg.Error:
                pass
        self.release()
        deadline = time.monotonic() + RELOCK_SECONDS
        while True:
            try:
                self.acquire()
                return
            except StorageError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(1.0)
            except StoreError:
                raise StoreError(
                    f"A conexão com o banco {self._database.where} caiu e, enquanto isso, outro processo assumiu "
                    "esta tarefa (a trava se perde com a conexão). Este processo parou para não refazer o "
                    "trabalho do outro; o que ele já gravou está salvo."
                ) from None

    def release(self) -> None:
        if self._conn is not None:
            with suppress(psycopg.Error):
                self._conn.close()
            self._conn = None


def _connection_problem(where: str, exc: psycopg.OperationalError) -> str:
    """One message per way a server can be unreachable, from libpq's words."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lowered = str(exc).lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        fix = "confira o usuário e a senha na URL"
    elif "does not exist" in lowered and "database" in lowered:
        fix = "crie o banco (createdb NOME) ou corrija o nome no fim da URL"
    elif "timeout" in lowered or "timed out" in lowered:
        fix = "o servidor não respondeu: confira o endereço, a porta e o firewall"
    else:
        fix = "confira se o servidor PostgreSQL está no ar e se o endereço e a porta da URL estão certos"
    return f"Não foi possível usar o banco {where}: {text}. O que fazer: {fix}. Nada foi gravado."
