"""Transcript files made by the tests themselves (when the point is their size or shape, not their words)."""

from __future__ import annotations

from pathlib import Path


def srt_time(ms: int) -> str:
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def srt_text(cues: list[tuple[float, float, str]]) -> str:
    """An SRT file's text for ``(start, end, text)`` cues, times cut to whole seconds."""
    return "\n".join(
        f"{i}\n{srt_time(int(a) * 1000)} --> {srt_time(int(b) * 1000)}\n{text}\n"
        for i, (a, b, text) in enumerate(cues, start=1)
    )


def big_srt(path: Path, cues: int) -> None:
    """Half-second cues: 200,000 of them are ~28 h of speech, ~12 MB (several seconds to ingest)."""
    with path.open("w", encoding="utf-8") as handle:
        for i in range(cues):
            handle.write(
                f"{i + 1}\n{srt_time(i * 500)} --> {srt_time(i * 500 + 450)}\n"
                f"fala número {i} sobre aprendizado de máquina\n\n"
            )


def spaced_srt(path: Path, cues: int, words: str, gap: int = 200) -> Path:
    """One five-second cue of ``words`` (numbered) every ``gap`` seconds: with 120 s windows, one segment per cue."""
    with path.open("w", encoding="utf-8") as handle:
        for i in range(cues):
            handle.write(f"{i + 1}\n{srt_time(i * gap * 1000)} --> {srt_time((i * gap + 5) * 1000)}\n")
            handle.write(f"{words} número {i}\n\n")
    return path
