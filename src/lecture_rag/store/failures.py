"""Naming storage failures: a read-only store, a full disk, a file-size limit, an I/O error, a corrupt file.

Why this module: SQLite and the operating system report these conditions in
their own words ("disk I/O error", "attempt to write a readonly database",
``OSError(EFBIG)``), and the user needs the cause and the fix instead: a full
disk wants space freed, a read-only store a writable copy, a corrupt file a
rebuild. Telling a full disk "corrupt, delete it" would destroy good data, so
only SQLite's own corruption codes are ever called corrupt.

SQLite does not hand over the ``errno`` behind an I/O error, so the cause of
one is diagnosed from the outside: a read-only file system, no free space, or
a finite file-size limit (``ulimit -f``) for this process.
"""

from __future__ import annotations

import errno
import os
import resource
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from lecture_rag.errors import StoreError

# SQLite primary result codes (the low byte of an extended code).
_SQLITE_PERM = 3
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26

_LOW_SPACE = 1 << 20  # under 1 MiB free, a failed write is a full disk
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_READ_ONLY_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}


class StorageError(StoreError):
    """The store's files cannot be written (read-only, full, over a size limit, I/O error); nothing was half-written.

    Unlike a bad input file, this stops a whole batch: every later write would fail the same way.
    """


def write_protected(*paths: Path) -> bool:
    """True when any existing path is not writable, or carries no write permission bits at all.

    The permission bits are honoured even for root, who the kernel lets write
    through them: a store its owner marked read-only (``chmod a-w``) is never
    modified by lecture-rag, whoever runs it.
    """
    for path in paths:
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        except OSError:
            return True
        if not info.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(path, os.W_OK):
            return True
        if _read_only_fs(path):
            return True
    return False


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _free_bytes(path: Path) -> int | None:
    for candidate in (path, *path.parents):
        try:
            info = os.statvfs(candidate)
        except OSError:
            continue
        return int(info.f_bavail * info.f_frsize)
    return None


def _file_size_limit() -> int | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def read_only_error(what: str, path: Path, detail: str = "") -> StorageError:
    why = f" ({detail})" if detail else ""
    return StorageError(
        f"{what[:1].upper()}{what[1:]} em {path} está somente leitura{why}: nada foi gravado. "
        "Para ingerir, indexar, remover aulas ou gravar rodadas, dê permissão de escrita (ou monte o disco "
        "para escrita) ou copie o acervo para um lugar gravável; consultas (search, ask, corpus list) "
        "funcionam assim mesmo."
    )


def _no_space_error(what: str, path: Path, detail: str) -> StorageError:
    limit = _file_size_limit()
    free = _free_bytes(path)
    if free is not None and free < _LOW_SPACE:
        cause, fix = "o disco está cheio", "libere espaço em disco"
    elif limit is not None:
        cause = f"o limite de tamanho de arquivo deste processo (ulimit -f: {limit} bytes) foi atingido"
        fix = "aumente o limite ('ulimit -f unlimited') ou libere espaço"
    else:
        cause, fix = "o disco ou a cota de espaço encheu durante a gravação", "libere espaço em disco"
    return StorageError(
        f"Não há espaço para gravar {what} em {path}: {cause} ({detail}). A operação foi desfeita e o que já "
        f"estava gravado continua intacto; {fix} e rode o comando de novo."
    )


def _io_error(what: str, path: Path, detail: str) -> StorageError:
    return StorageError(
        f"Erro de entrada/saída ao gravar {what} em {path} ({detail}). A operação foi desfeita e o que já estava "
        "gravado continua intacto; confira o disco (por exemplo 'dmesg') e rode o comando de novo."
    )


def diagnose(what: str, path: Path, detail: str) -> StorageError | None:
    """The cause of a write that failed without an errno (SQLite's I/O errors, usearch): None when none is found."""
    folder = path if path.is_dir() else path.parent
    if _read_only_fs(folder):
        return read_only_error(what, path, "sistema de arquivos somente leitura")
    free = _free_bytes(folder)
    if (free is not None and free < _LOW_SPACE) or _file_size_limit() is not None:
        return _no_space_error(what, path, detail)
    return None


def sqlite_failure(exc: sqlite3.Error, what: str, path: Path) -> StorageError | None:
    """The storage failure behind an SQLite error, or None when it is not one (a bug, or a corrupt file).

    ``what`` names the file for the user ("o acervo", "o cache de embeddings").
    """
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(code, int):
        return None
    primary = code & 0xFF
    detail = str(exc)
    if primary in (_SQLITE_READONLY, _SQLITE_PERM):
        return read_only_error(what, path)
    if primary == _SQLITE_FULL:
        return _no_space_error(what, path, detail)
    if primary == _SQLITE_IOERR:
        return diagnose(what, path, detail) or _io_error(what, path, detail)
    if primary == _SQLITE_CANTOPEN and write_protected(path.parent):
        return read_only_error(what, path)
    return None


def open_error(exc: sqlite3.Error, what: str, path: Path, *, corrupt: str) -> StoreError:
    """Why an SQLite file could not be opened: a storage failure, a corrupt file (``corrupt`` says what to do), or else.

    Only SQLite's corruption codes get the ``corrupt`` advice: it may be "delete it",
    which must never reach a good file that merely could not be written.
    """
    failure = sqlite_failure(exc, what, path)
    if failure is not None:
        return failure
    if is_corrupt(exc):
        return StoreError(corrupt)
    return StoreError(
        f"Não foi possível abrir {what} {path} ({exc}). Confira o caminho e as permissões e rode o comando de "
        "novo; o arquivo não foi alterado."
    )


def is_corrupt(exc: sqlite3.Error) -> bool:
    """SQLite's own verdict that a file is damaged or not a database: the only case to call it corrupt."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and (code & 0xFF) in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


def os_failure(exc: BaseException, what: str, path: Path) -> StorageError | None:
    """The storage failure behind an error raised while writing files (``OSError`` or a library's own error)."""
    detail = str(exc)
    number = exc.errno if isinstance(exc, OSError) else None
    if number in _FULL_ERRNOS or number == errno.EFBIG:
        return _no_space_error(what, path, detail)
    if number in _READ_ONLY_ERRNOS:
        return read_only_error(what, path, detail)
    if number == errno.EIO:
        return _io_error(what, path, detail)
    return diagnose(what, path, detail)


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back an open transaction; one SQLite already rolled back (after a full disk, an I/O error) is left.

    A failing ROLLBACK is ignored: the error being handled is the one the user must see.
    """
    if conn.in_transaction:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


class DamagedError(StorageError):
    """A database file SQLite calls damaged: nothing more is written to it (a batch stops, as on a full disk)."""


def corrupt_error(what: str, path: Path, detail: str, advice: str) -> DamagedError:
    """A damaged database file (SQLite's verdict, or ``PRAGMA quick_check``'s): say which file and what to do."""
    return DamagedError(
        f"{what[:1].upper()}{what[1:]} {path} está corrompido ou não é um banco SQLite ({detail}); nada foi "
        f"gravado nele. {advice}"
    )


@contextmanager
def sqlite_errors(what: str, path: Path, advice: str = "") -> Iterator[None]:
    """Turn SQLite's storage failures inside the block into a :class:`StorageError` that names the cause.

    With ``advice`` (what to do with a damaged file), SQLite's own corruption
    verdicts become one clear :func:`corrupt_error` instead of a traceback.
    """
    try:
        yield
    except sqlite3.Error as exc:
        failure = sqlite_failure(exc, what, path)
        if failure is not None:
            raise failure from exc
        if advice and is_corrupt(exc):
            raise corrupt_error(what, path, str(exc), advice) from exc
        raise


@contextmanager
def os_errors(what: str, path: Path) -> Iterator[None]:
    """Turn a failed file operation inside the block into a :class:`StorageError` when its cause is a storage one."""
    try:
        yield
    except OSError as exc:
        failure = os_failure(exc, what, path)
        if failure is None:
            raise
        raise failure from exc
