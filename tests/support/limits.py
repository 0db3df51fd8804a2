"""A full disk without root: run a command under a small file-size limit (``RLIMIT_FSIZE``).

With ``SIGXFSZ`` ignored, a write that would grow any file past the limit
fails with ``EFBIG``, exactly where a full disk fails with ``ENOSPC``: in the
middle of a transaction, while writing an index file. Files already larger
than the limit can still be read and rewritten in place, so the store opens
and reads normally (SQLite's ``-shm`` file needs 32 KiB: keep the limit above
that).
"""

from __future__ import annotations

import resource
import signal
import subprocess
import time
from pathlib import Path

from tests.support.cli import EXE, cli_env, run_command, wait_for_count

SHM_BYTES = 32 * 1024


def run_with_file_limit(
    args: list[str], limit: int, *, store: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` (``lecture-rag`` prepended when the first item is a subcommand) with files capped at ``limit`` bytes."""
    assert limit > SHM_BYTES, "SQLite needs 32 KiB for the -shm file of a WAL database"

    def cap() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    if not Path(args[0]).is_absolute():
        args = [EXE, *args]
    return run_command(args, store=store, env=env, timeout=timeout, preexec_fn=cap)


def cap_files_when(
    args: list[str], db: Path, count_sql: str, at_least: int, *, store: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the CLI and, once ``count_sql`` on ``db`` reaches ``at_least``, cap its files at the WAL's current size.

    For commands that write large temporary files while starting (the language
    detector unpacks its model): the disk "fills up" only once they are at work.
    The limit is lowered on the running process (``prlimit``), which needs no privilege.
    """
    proc = subprocess.Popen(
        [EXE, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(store),
        preexec_fn=lambda: signal.signal(signal.SIGXFSZ, signal.SIG_IGN),
    )
    deadline = time.time() + timeout
    try:
        wait_for_count(proc, db, count_sql, at_least, timeout)
        wal = db.with_name(db.name + "-wal")
        limit = max(SHM_BYTES + 1, wal.stat().st_size if wal.exists() else 0)  # the next commit grows the WAL
        if proc.poll() is None:
            resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (limit, limit))
        out, err = proc.communicate(timeout=max(1.0, deadline - time.time()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
