"""Whisper JSON: openai-whisper, faster-whisper and WhisperX output."""

from __future__ import annotations

from collections.abc import Iterator

from lecture_rag.ingest.readers.common import (
    Source,
    error,
)
from lecture_rag.ingest.readers.jsonfields import load_json, timed_record
from lecture_rag.records import Cue


def read_whisper(source: Source) -> Iterator[Cue]:
    """openai-whisper / faster-whisper / WhisperX output: ``segments`` or a bare list of them."""
    data = load_json(source)
    segments = data.get("segments") if isinstance(data, dict) else data
    if not isinstance(segments, list):
        raise error(
            source,
            "",
            "JSON sem a lista 'segments' com start/end/text",
            "Salve a saída do Whisper com os segmentos (por exemplo, --output_format json)",
        )
    for number, segment in enumerate(segments, 1):
        cue = timed_record(source, f"segmento {number}", segment)
        if cue is not None:
            yield cue
