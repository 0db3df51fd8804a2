"""Running the installed ``lecture-rag`` command as a user would, and interrupting it mid-work."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

EXE = str(Path(sys.executable).parent / "lecture-rag")


def cli_env(store: Path | None = None, env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a CLI child: ``store`` as LECTURE_RAG_HOME, wide output, ``env`` on top."""
    full_env = dict(os.environ)
    full_env.pop("LECTURE_RAG_HOME", None)
    if store is not None:
        full_env["LECTURE_RAG_HOME"] = str(store)
    full_env["COLUMNS"] = "200"
    full_env.update(env or {})
    return full_env


def run_command(
    args: list[str],
    *,
    store: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    input: str | None = None,
    preexec_fn: Callable[[], Any] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` with :func:`cli_env`, capturing text output (``preexec_fn`` runs in the child first)."""
    return subprocess.run(
        args, capture_output=True, text=True, env=cli_env(store, env), timeout=timeout, check=False, input=input,
        preexec_fn=preexec_fn,
    )  # fmt: skip


def run_cli(
    *args: str,
    store: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``lecture-rag`` command as a user would (``store`` becomes LECTURE_RAG_HOME)."""
    return run_command([EXE, *args], store=store, env=env, timeout=timeout, input=input)


def count_rows(db: Path | str, count_sql: str) -> int:
    """``count_sql`` on the SQLite file ``db`` or the PostgreSQL database at URL ``db``; missing tables count as 0."""
    if isinstance(db, str):
        try:
            with psycopg.connect(db, connect_timeout=5) as conn:
                row = conn.execute(count_sql).fetchone()
                return int(row[0]) if row else 0
        except psycopg.Error:
            return 0
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(db)
        try:
            return int(conn.execute(count_sql).fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0


def wait_for_count(proc: subprocess.Popen[Any], db: Path | str, count_sql: str, at_least: int, timeout: float) -> None:
    """Poll ``count_sql`` on ``db`` (SQLite file or PostgreSQL URL) until it reaches ``at_least``.

    Returns then, or at ``timeout``, or as soon as the process ends by itself;
    a database or table that does not exist yet counts as zero.
    """
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if count_rows(db, count_sql) >= at_least:
            return
        time.sleep(0.02)


def kill_when(proc: subprocess.Popen[Any], db: Path | str, count_sql: str, at_least: int, timeout: float) -> None:
    """SIGKILL ``proc`` as soon as ``count_sql`` on ``db`` reaches ``at_least``: a real CLI run interrupted mid-work."""
    wait_for_count(proc, db, count_sql, at_least, timeout)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
