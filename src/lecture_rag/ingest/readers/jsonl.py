"""JSON Lines (.jsonl, .ndjson): one ``{"start", "end", "text"}`` object per line, streamed."""

from __future__ import annotations

from collections.abc import Iterator

from lecture_rag.ingest.readers.common import (
    Source,
    lines_of,
    open_text,
)
from lecture_rag.ingest.readers.jsonfields import parsed, timed_record
from lecture_rag.records import Cue


def read_jsonl(source: Source) -> Iterator[Cue]:
    """One ``{"start", "end", "text"}`` object per line, streamed."""
    with open_text(source) as handle:
        for number, line in enumerate(lines_of(source, handle), 1):
            if not line.strip():
                continue
            where = f"linha {number}"
            record = parsed(source, where, line, "Cada linha deve ser um objeto JSON completo; corrija a linha")
            cue = timed_record(source, where, record)
            if cue is not None:
                yield cue
