"""Transcript readers: caption and transcript files → a stream of :class:`Cue`.

One module per format (``vtt``, ``srt``, ``json3``, ``whisper``, ``jsonl``, ``nurc_csv``), as
haystack's converters are; this module recognises the file (``sniff``) and hands it to the
reader of its format.

Every reader yields cues in *file* order and leaves sorting and overlap removal
to the segmenter, so one reader bug cannot hide behind another stage's fix.

Why the readers look the way they do:

* Lecture files can be large (a semester of auto-captions, a concatenated
  JSONL export), so the line-based formats (WebVTT, SRT, JSONL, CSV) are read
  line by line and cut into cue blocks here; the parser libraries (webvtt-py,
  pysubs2) only ever see one cue block. Memory stays bounded by the largest
  block, not by the file.
* Brazilian files are often Latin-1/cp1252. Detectors guess badly on short
  Portuguese text, so strict UTF-8 is tried first (it almost never decodes
  cp1252 text by accident), then cp1252, and only then charset-normalizer.
* YouTube auto-captions "roll": each cue repeats the previous line and adds a
  new one, with 10 ms transition cues in between. Indexing them naively would
  triple every word, so rolling repeats are dropped here, where the cue
  structure is still visible.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from lecture_rag.ingest.readers.common import FORMATS, SUPPORTED_SUFFIXES, Source, clean_text, error
from lecture_rag.ingest.readers.json3 import read_json3
from lecture_rag.ingest.readers.jsonfields import check_json_size
from lecture_rag.ingest.readers.jsonl import read_jsonl
from lecture_rag.ingest.readers.nurc_csv import csv_column, nurc_video_id, read_csv
from lecture_rag.ingest.readers.sniff import sniff, whole_file_encoding
from lecture_rag.ingest.readers.srt import read_srt
from lecture_rag.ingest.readers.vtt import read_vtt
from lecture_rag.ingest.readers.whisper import read_whisper
from lecture_rag.records import Cue
from lecture_rag.userfiles import JSONNestingError, parse_json, read_user_text

__all__ = [
    "FORMATS",
    "SUPPORTED_SUFFIXES",
    "JSONNestingError",
    "clean_text",
    "detect_format",
    "nurc_video_id",
    "parse_json",
    "read_cues",
    "read_user_text",
    "transcript_source",
]


def detect_format(path: Path) -> str:
    """Name the transcript format of ``path`` from its suffix and its first bytes.

    Content wins over suffix among caption formats (a ``.srt`` that starts with
    ``WEBVTT`` is WebVTT): downloaders often mislabel files, and reading by
    content is what a user expects. The suffix still has to be a transcript one.
    """
    return sniff(Path(path)).fmt


def transcript_source(path: Path, *, column: str | None = None) -> str:
    """What a file's text is, for its video's ``transcript_source`` (see ``records.transcript_source_label``).

    A NURC CSV read from its ``prediction`` column is speech recognition (``asr:nurc_csv``), from
    its ``text`` column a person's transcript (``human:nurc_csv``): both map to the same video id,
    so the label is how a user tells them apart. Other files are ``file:<format>``.
    """
    source = sniff(Path(path))
    if source.fmt == "nurc_csv":
        return "asr:nurc_csv" if csv_column(source, column) == "prediction" else "human:nurc_csv"
    return f"file:{source.fmt}"


def read_cues(path: Path, *, column: str | None = None) -> Iterator[Cue]:
    """Cues of a transcript file, in file order, with clean non-empty text.

    The file is checked eagerly (format, encoding, CSV column) so that a wrong
    file fails at the call, not halfway through an ingest; the cues are then
    produced lazily. ``column`` picks the text column of a CSV transcript
    (default ``text``, or ``prediction`` for NURC ASR files) and is ignored for
    formats that have a single text, so one option can serve a mixed folder.

    Raises :class:`IngestError` (in Portuguese, with file and line) for empty,
    binary or malformed files and impossible times.
    """
    source = sniff(Path(path))
    if source.fmt in ("json3", "whisper_json"):
        check_json_size(source)
    source.encoding = whole_file_encoding(source)
    if source.fmt == "nurc_csv":
        source.column = csv_column(source, column)
    return _require_cues(source, _READERS[source.fmt](source))


def _require_cues(source: Source, cues: Iterator[Cue]) -> Iterator[Cue]:
    """Pass cues through; a file that yields none is an error, not a silent empty video."""
    count = 0
    for cue in cues:
        count += 1
        yield cue
    if count == 0:
        raise error(
            source,
            "",
            "nenhuma legenda com texto foi encontrada",
            "Confira se o arquivo tem falas com tempos e se a coluna de texto é a certa",
        )


_READERS: dict[str, Callable[[Source], Iterator[Cue]]] = {
    "vtt": read_vtt,
    "srt": read_srt,
    "json3": read_json3,
    "whisper_json": read_whisper,
    "jsonl": read_jsonl,
    "nurc_csv": read_csv,
}
