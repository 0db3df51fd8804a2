"""Speech-to-text with the default model (Whisper base, int8, CPU): real-time factor, peak memory, WER.

The speech is synthetic: real NURC-SP lecture lines (three per lecture, the
same fixed rule as the tests) spoken by ``espeak-ng -v pt-br``, at a slow
(120 words/min) and at espeak's default-ish speed (150). Real lecture
speech (rooms, accents, students) will differ, in both directions: read
these word error rates as "Portuguese comes through", never as a quality
figure for real lectures.

Each row runs in its own process (so its peak memory is its own) with
``--threads`` threads (default 2, the target machine): model load time,
real-time factor (transcription seconds / audio seconds, lower is faster)
and peak RSS. Rows side by side: VAD on (the default) and off.

Run: ``python -m bench.bench_whisper`` (about two minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.speech import nurc_sentences, synthesise, word_error_rate

from lecture_rag.config import TranscriptionSettings
from lecture_rag.ingest.transcribe import transcribe

REPO = Path(__file__).resolve().parents[1]


def child(args: argparse.Namespace) -> None:
    """One configuration, measured in this process; prints one JSON line."""
    sentences = json.loads(Path(args.sentences).read_text(encoding="utf-8"))
    settings = TranscriptionSettings(threads=args.threads, vad=args.vad)
    start = time.perf_counter()
    transcribe(Path(args.audio), settings)  # loads (and hash-checks) the model, checks the file
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    cues = list(transcribe(Path(args.audio), settings))
    elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    hypothesis = " ".join(c.text for c in cues)
    print(
        json.dumps(
            {"load_s": loaded, "seconds": elapsed, "peak_mb": peak_mb, "wer": word_error_rate(sentences, hypothesis)}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--per-lecture", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--audio", help=argparse.SUPPRESS)
    parser.add_argument("--sentences", help=argparse.SUPPRESS)
    parser.add_argument("--vad", type=lambda v: v == "on", default=True, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    sentences = nurc_sentences(args.per_lecture)
    print(f"{len(sentences)} NURC lines, espeak-ng pt-br (synthetic speech), Whisper base int8, {args.threads} threads")
    print(f"{'speed':>6} {'VAD':>4} {'audio s':>8} {'load s':>7} {'RTF':>6} {'peak MB':>8} {'WER':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "sentences.json"
        listing.write_text(json.dumps(sentences), encoding="utf-8")
        for speed in (120, 150):
            spoken = synthesise(sentences, Path(tmp) / f"speech-{speed}.wav", gap=1.0, speed=speed)
            for vad in ("on", "off"):
                cmd = [sys.executable, "-m", "bench.bench_whisper", "--child", "--audio", str(spoken.path), "--sentences", str(listing),
                       "--threads", str(args.threads), "--vad", vad]  # fmt: skip
                row = json.loads(
                    subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=REPO).stdout.splitlines()[-1]
                )
                rtf = row["seconds"] / spoken.duration
                print(
                    f"{speed:>6} {vad:>4} {spoken.duration:>8.1f} {row['load_s']:>7.2f} {rtf:>6.3f} "
                    f"{row['peak_mb']:>8.0f} {row['wer']:>6.3f}"
                )


if __name__ == "__main__":
    main()
