"""YouTube json3 (timedtext, what yt-dlp writes as .json3)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lecture_rag.ingest.readers.common import (
    Source,
    check_times,
    clean_text,
    error,
)
from lecture_rag.ingest.readers.jsonfields import json_number, json_string, load_json
from lecture_rag.records import Cue


def read_json3(source: Source) -> Iterator[Cue]:
    """YouTube json3 (timedtext): events with millisecond times and text segments.

    ASR json3 events stay on screen after the next one starts; the end of an
    event is clipped to the next event's start so the cues tile the speech.
    """
    data = load_json(source)
    events = data.get("events") if isinstance(data, dict) else None
    if not isinstance(events, list):
        raise error(
            source,
            "",
            "JSON sem a lista 'events' do formato json3 do YouTube",
            "Baixe as legendas de novo no formato json3 ou use VTT",
        )
    timed = list(_json3_events(source, events))
    for i, (start, end, text) in enumerate(timed):
        if i + 1 < len(timed) and start < timed[i + 1][0] < end:
            end = timed[i + 1][0]
        yield Cue(start, end, text)


def _json3_events(source: Source, events: list[Any]) -> Iterator[tuple[float, float, str]]:
    for number, event in enumerate(events, 1):
        where = f"evento {number}"
        if not isinstance(event, dict):
            raise error(source, where, "evento não é um objeto JSON", "Baixe as legendas de novo")
        segs = event.get("segs")
        if not segs:
            continue  # window and style definitions carry no text
        if not isinstance(segs, list):
            raise error(source, where, "'segs' deveria ser uma lista", "Baixe as legendas de novo")
        text = clean_text(
            "".join(json_string(source, where, seg.get("utf8", ""), "utf8") for seg in segs if isinstance(seg, dict))
        )
        if not text:
            continue
        start_ms = json_number(source, where, event.get("tStartMs"), "tStartMs")
        duration_ms = json_number(source, where, event.get("dDurationMs", 0), "dDurationMs")
        start, end = start_ms / 1000, (start_ms + duration_ms) / 1000
        check_times(source, where, start, end)
        yield start, end, text
