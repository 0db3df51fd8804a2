"""Integrity of index files: size, SHA-256 and a sampled SHA-256 of each data file, recorded in the manifests.

Why two digests: a full hash of a 1M-segment build costs about a second
(1.5 GB of float32 vectors: SHA-256 1.0 s with the file cached, 1.4 s cold,
on our 2 cores), which is fine for ``lecture-rag index`` (it verifies fully
before it skips a build) but not for every process that loads the index to
answer one question. Loading checks each file's exact size and a SHA-256
over 16 blocks of 64 KiB spread evenly over the file (the whole file when it
is under 1 MiB): about 1 MiB read whatever the corpus size (0.9 ms cached,
28 ms cold at 1M, against 78 ms for the rest of ``VectorIndex.load``). A
truncated file fails the size check, garbage over a file fails the sample;
damage between sampled blocks is caught by ``index``, and by the range check
on cosines at search time (:mod:`lecture_rag.index.vectors`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import weakref
from pathlib import Path
from typing import Any

BLOCK = 64 * 1024
SAMPLES = 16


def _sample_offsets(size: int) -> list[int]:
    blocks = -(-size // BLOCK)
    if blocks <= SAMPLES:
        return [i * BLOCK for i in range(blocks)]
    last = size - BLOCK
    return [round(i * last / (SAMPLES - 1)) for i in range(SAMPLES)]


def sample_digest(path: Path, size: int) -> str:
    """SHA-256 of the file's size and of evenly spread blocks (every block of a small file)."""
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        for offset in _sample_offsets(size):
            handle.seek(offset)
            digest.update(handle.read(BLOCK))
    return digest.hexdigest()


def full_digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def checksum(path: Path) -> dict[str, Any]:
    """What the manifest records for one data file."""
    size = path.stat().st_size
    return {"size": size, "sha256": full_digest(path), "sample": sample_digest(path, size)}


def checksums(directory: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    return {name: checksum(directory / name) for name in names}


def problem(directory: Path, recorded: dict[str, Any], *, full: bool) -> str | None:
    """What is wrong with the files of ``recorded`` (None when they match): sizes and samples, or full hashes."""
    for name, check in sorted(recorded.items()):
        path = directory / name
        try:
            size = path.stat().st_size
        except OSError:
            return f"arquivo ausente: {name}"
        try:
            if size != int(check["size"]):
                return f"{name} tem {size} bytes, o manifesto registra {check['size']}"
            if sample_digest(path, size) != check["sample"]:
                return f"o conteúdo de {name} não confere com a soma de verificação do manifesto"
            if full and full_digest(path) != check["sha256"]:
                return f"o SHA-256 de {name} não confere com o manifesto"
        except OSError as exc:
            return f"{name} ilegível ({exc})"
        except (KeyError, TypeError, ValueError) as exc:
            return f"soma de verificação de {name} inválida no manifesto ({exc})"
    return None


class MappedFiles:
    """The files a loaded index reads through memory maps, held open to notice a truncation before a read.

    Reading a page of a memory map past the end of its (since truncated)
    file raises SIGBUS, which Python cannot catch: the process dies. The
    project never rewrites a build's files in place (a new build gets new
    files), but a ``cp -r`` restore or ``rsync --inplace`` over the store
    folder does. So each file stays open (a descriptor per file, closed with
    the index) and :meth:`problem` compares its current size (``fstat``, the
    very file that is mapped, not whatever the name points to now) with the
    size it had at load, before every search. A truncation between that
    check and the read can still kill the process: the window is a search's
    few milliseconds, not the life of the server.
    """

    def __init__(self, paths: list[Path]) -> None:
        self._files: list[tuple[str, int, int]] = []  # (name, descriptor, size at load)
        for path in paths:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            self._files.append((path.name, fd, os.fstat(fd).st_size))
        weakref.finalize(self, _close_all, [fd for _, fd, _ in self._files])

    def problem(self) -> str | None:
        """What changed under the maps since load (None: every file has its size still)."""
        for name, fd, size in self._files:
            now = os.fstat(fd).st_size
            if now != size:
                return f"{name} tem agora {now} bytes, {size} quando foi carregado (alterado enquanto servido)"
        return None


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
