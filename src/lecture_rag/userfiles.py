"""Files a person hands us (transcripts, question sets, annotations): decoded and parsed one way.

Both ingest (transcripts) and evaluate (question sets, annotation exports) read files
people wrote or exported by hand, often from Windows spreadsheets; the same encoding
rules and the same guard against hostile JSON apply to all of them, so they live in
the core layer rather than in one stage that the other would import.
"""

from __future__ import annotations

import codecs
import json
import re
import stat
from pathlib import Path
from typing import Any

from lecture_rag.errors import LectureRagError

#: JSON documents are parsed whole; above this size JSONL (streamed) is the way.
MAX_JSON_BYTES = 100 * 1024 * 1024
#: Byte-order marks and the encoding each announces (longest first where one starts another).
BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16: its BOM starts like UTF-16 LE's
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


# Terminal escape sequences (CSI ``ESC [ ... m``, OSC ``ESC ] ... BEL``, two-byte ``ESC x``) and the
# C0/C1 control characters but tab and newline: what can move a cursor, clear a screen or set a title.
_CONTROLS = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]?|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[ -~]?)"
    r"|\x9b[0-?]*[ -/]*[@-~]?|\x9d[^\x07\x1b]*\x07?"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


def printable(text: str) -> str:
    """``text`` without terminal escape sequences or control characters (tab and newline stay).

    One function for both ends: metadata people hand us (a sidecar's or a
    video page's title and course) is cleaned when it comes in, and the
    terminal's output is cleaned when it goes out, so a title like
    ``\x1b]0;...\x07`` or ``\x1b[2J`` reaches no one's terminal from an old store either.
    """
    return _CONTROLS.sub("", text)


class JSONNestingError(ValueError):
    """A JSON document nested deeper than the parser's recursion allows (``[[[[...]]]]``)."""


def parse_json(text: str) -> Any:
    """``json.loads`` for files people hand us: absurd nesting is a :class:`JSONNestingError`.

    Python's parser recurses once per level of nesting, so ``[[[[...]]]]`` a
    hundred thousand levels deep raises ``RecursionError``, which no caller
    expects from a parser. No transcript, question set or annotation file
    nests more than a few levels (SQuAD: seven), so this is always a broken
    or hostile file. The error is a ``ValueError``, like every other
    malformed JSON, so callers report it where they report those.
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise JSONNestingError(
            "listas ou objetos JSON aninhados em níveis demais (centenas de '[' ou '{' seguidos)"
        ) from None


def require_regular_file(path: Path, expected: str) -> None:
    """Refuse anything but a regular file (after symlinks) before it is opened for reading.

    ``/dev/zero``, ``/dev/urandom``, a FIFO or a socket never end: reading one
    "whole" hangs the command or fills the memory. A folder and a missing path
    get their own message; ``expected`` names what the file should hold.
    Raises :class:`LectureRagError` naming the path.
    """
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise _unreadable(path, exc, expected) from None
    if stat.S_ISDIR(mode):
        raise LectureRagError(f"{path}: é uma pasta, não um arquivo. Indique o arquivo ({expected}).")
    if not stat.S_ISREG(mode):
        raise LectureRagError(
            f"{path}: não é um arquivo comum (é um dispositivo, FIFO ou socket, que nunca termina de ser lido). "
            f"Indique um arquivo salvo em disco ({expected})."
        )


def _unreadable(path: Path, exc: OSError, expected: str = "") -> LectureRagError:
    if isinstance(exc, FileNotFoundError):
        what = f" ({expected})" if expected else ""
        return LectureRagError(f"{path}: arquivo não encontrado{what}. Confira o caminho.")
    return LectureRagError(
        f"{path}: não foi possível ler o arquivo ({exc.strerror}). Confira o caminho e as permissões."
    )


def read_user_text(path: Path, expected: str) -> str:
    """The whole text of a small file a person wrote (question set, annotations), decoded like transcripts.

    The encoding is found as for transcripts (a BOM, strict UTF-8, then
    Windows-1252, which spreadsheets on Windows write); folders, binary
    files and text in neither encoding are refused with a
    :class:`LectureRagError` that names the file and says what to do.
    ``expected`` names what the file should hold, for the messages (e.g.
    ``"perguntas em JSON Lines ou SQuAD"``).
    """
    require_regular_file(path, expected)
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise LectureRagError(
                f"{path}: arquivo grande demais ({size / 2**20:.0f} MB; o limite é {MAX_JSON_BYTES // 2**20} MB). "
                f"Confira se é mesmo o arquivo certo ({expected})."
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise _unreadable(path, exc) from None
    text = decode_whole(raw)
    if text is None or looks_binary(text):
        raise LectureRagError(
            f"{path}: o arquivo tem conteúdo binário ou não está em UTF-8 nem em Windows-1252. "
            f"Era esperado texto ({expected}); salve o arquivo como UTF-8 e tente de novo."
        )
    return text


def looks_binary(text: str) -> bool:
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\f")
    return "\x00" in text or controls > max(2, len(text) // 100)


def decode_whole(raw: bytes) -> str | None:
    """Text of a whole (small) file: its BOM's encoding, else strict UTF-8, else cp1252; None if none fits."""
    encodings = [encoding for bom, encoding in BOMS if raw.startswith(bom)][:1]
    if not encodings:
        if b"\x00" in raw:
            return None
        encodings = ["utf-8", "cp1252"]
    for encoding in encodings:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None
