"""Portuguese speech for the speech-to-text tests and bench: real lecture lines, synthetic voice.

Real lecture audio is not available here, so the words are real (lines of
the NURC-SP human transcripts in ../shared/data) and the voice is
``espeak-ng -v pt-br``. That voice is synthetic: word error rates measured on
it say that the model and the pipeline work on Portuguese, not how well they
do on a real lecture hall recording.

Each sentence is synthesised on its own and the clips are joined with a
known gap, so the audio comes with the true time span of every sentence.
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import tempfile
import unicodedata
import wave
from dataclasses import dataclass
from pathlib import Path

import jiwer

from tests.support.paths import shared

LECTURES = ("SP_EF_124", "SP_EF_153", "SP_EF_377", "SP_EF_405")
_PUNCT = re.compile(r"[^\w\s]")


@dataclass(frozen=True, slots=True)
class Spoken:
    """A synthesised clip: its file, its sentences and where each one is spoken (seconds)."""

    path: Path
    sentences: list[str]
    spans: list[tuple[float, float]]
    duration: float


def nurc_sentences(per_lecture: int, min_words: int = 8, max_words: int = 16) -> list[str]:
    """Lines of the NURC-SP human transcripts (``text`` column), evenly spaced through each lecture.

    Chosen by a fixed rule (length only, spread over the whole lecture), never
    by how well they transcribe.
    """
    out: list[str] = []
    for lecture in LECTURES:
        path = shared("nurc-sp", "transcripts", f"sentences_{lecture}.csv")
        with path.open(encoding="utf-8") as handle:
            lines = [row["text"].strip() for row in csv.DictReader(handle, delimiter=";")]
        fit = list(dict.fromkeys(line for line in lines if min_words <= len(line.split()) <= max_words))
        step = max(1, len(fit) // per_lecture)
        out.extend(fit[step // 2 :: step][:per_lecture])
    return out


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise AssertionError(f"{name} is missing: run `apt-get install -y espeak-ng ffmpeg` (or make install)")
    return found


def synthesise(sentences: list[str], out: Path, gap: float = 0.8, speed: int = 150) -> Spoken:
    """One WAV of ``sentences`` spoken by espeak-ng (pt-br), ``gap`` seconds of silence between them."""
    espeak = _tool("espeak-ng")
    spans: list[tuple[float, float]] = []
    frames: list[bytes] = []
    params = None
    at = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for number, sentence in enumerate(sentences):
            clip = Path(tmp) / f"{number}.wav"
            subprocess.run([espeak, "-v", "pt-br", "-s", str(speed), "-w", str(clip), sentence], check=True, timeout=60)
            with wave.open(str(clip)) as w:
                params = w.getparams()
                data = w.readframes(w.getnframes())
                seconds = w.getnframes() / w.getframerate()
            silence = b"\0" * (int(gap * params.framerate) * params.sampwidth * params.nchannels)
            frames += [data, silence]
            spans.append((at, at + seconds))
            at += seconds + gap
    assert params is not None, "no sentences"
    with wave.open(str(out), "wb") as w:
        w.setparams(params)
        for chunk in frames:
            w.writeframes(chunk)
    return Spoken(out, list(sentences), spans, at)


def normalise(text: str) -> str:
    """Lower case, no punctuation, one space: the NURC ``text`` column's own conventions."""
    text = unicodedata.normalize("NFC", text.lower())
    return " ".join(_PUNCT.sub(" ", text).split())


def word_error_rate(reference: list[str], hypothesis: str) -> float:
    """Pooled WER of the whole clip (jiwer): the reference sentences against everything recognised."""
    return float(jiwer.wer(normalise(" ".join(reference)), normalise(hypothesis)))
