"""Running the installed ``lecture-rag`` command as a user would, and interrupting it mid-work."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path


def run_cli(
    *args: str,
    store: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``lecture-rag`` command as a user would (``store`` becomes LECTURE_RAG_HOME)."""
    full_env = dict(os.environ)
    full_env.pop("LECTURE_RAG_HOME", None)
    if store is not None:
        full_env["LECTURE_RAG_HOME"] = str(store)
    full_env["COLUMNS"] = "200"
    full_env.update(env or {})
    exe = Path(sys.executable).parent / "lecture-rag"
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, env=full_env, timeout=timeout, check=False, input=input
    )


def kill_when(proc: subprocess.Popen[bytes], db: Path, count_sql: str, at_least: int, timeout: float) -> None:
    """SIGKILL ``proc`` as soon as ``count_sql`` on the SQLite file ``db`` reaches ``at_least``.

    Polls until then (or until ``timeout``, or until the process ends by itself),
    tolerating a database or table that does not exist yet; used to interrupt a
    real CLI run mid-work.
    """
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(db) as conn:
                    if conn.execute(count_sql).fetchone()[0] >= at_least:
                        break
            except sqlite3.OperationalError:
                pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
