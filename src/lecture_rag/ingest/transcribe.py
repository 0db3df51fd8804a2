"""Speech-to-text for lecture recordings that come without captions.

A lecture is often just an ``.mp4`` or ``.mp3`` (or a YouTube video without
Portuguese captions): this module turns it into the same
:class:`~lecture_rag.records.Cue` stream that caption readers produce, so the
rest of the pipeline does not care where the text came from.

It runs faster-whisper (CTranslate2), by default on the CPU with int8 weights,
because that is what a laptop without a GPU can afford. Model hubs may be
unreachable, so the default model is the multilingual Whisper **base**
reassembled from its registry packages (:mod:`lecture_rag.ingest.whisper_base`,
hash checked before loading); ``--whisper-model`` takes any faster-whisper
name or CTranslate2 directory for users with a hub or a GPU.

Settings that were measured (``../shared/MODELS.md``, README "Speech-to-text"):
the language is given, never detected (detection picks the wrong language on
short or synthetic Portuguese); VAD on and ``condition_on_previous_text`` off,
because long audio otherwise falls into repetition loops; word timestamps on,
so cues start and end at words and a cited second is where the word is.
faster-whisper is an optional extra, imported lazily: importing this module
(for :data:`MEDIA_SUFFIXES`, say) never requires it.

With ``--engine ray`` (:mod:`lecture_rag.batch`), :func:`transcription_stage`
runs :func:`transcribe` on whole files inside Ray actors: each actor loads
the model once (the per-process cache below) with its share of the cores as
threads, and sends the file's cues back to the process that stores them.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lecture_rag.batch import Stage
from lecture_rag.config import TranscriptionSettings
from lecture_rag.errors import IngestError
from lecture_rag.ingest.whisper_base import BASE, bundled_base
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
#: Seconds of audio decoded and recognised at a time (about 80 MB of samples): memory does not grow with duration.
_CHUNK_SECONDS = 20 * 60.0
#: A pause this long between two words starts a new cue, so a cue never spans silence.
_PAUSE_SECONDS = 1.0
_INSTALL_HINT = "pip install 'lecture-rag[whisper]'"
_MODEL_HINT = (
    "Para outros idiomas (como português), omita --whisper-model para usar o Whisper base multilíngue "
    "offline, ou passe a pasta de um modelo faster-whisper multilíngue (CTranslate2) com --whisper-model."
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


def model_label(model: str) -> str:
    """The short name a transcript's source shows: ``base`` for the default, a name, or a folder's name."""
    text = model.strip()
    if not text:
        return BASE.name
    path = Path(text).expanduser()
    return path.name if path.exists() else text


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


def resolve_model(name_or_path: str, cache_dir: Path) -> str:
    """Turn the user's ``--whisper-model`` into something ``WhisperModel`` can load.

    Blank means the offline Whisper base, assembled in ``cache_dir`` and hash
    checked. An existing path must be a model directory. A known size
    (``small``) or a hub ID (``owner/name``) is passed through for users who
    can reach the hub; anything else is a path that does not exist, reported
    as such rather than as a confusing hub error.
    """
    text = name_or_path.strip()
    if not text:
        return str(bundled_base(cache_dir))
    path = Path(text).expanduser()
    if path.exists():
        return _check_model_dir(path)
    if text in _import_faster_whisper().available_models() or _HUB_ID.match(text):
        return text
    raise IngestError(
        f"O modelo de transcrição '{text}' não foi encontrado: a pasta não existe e não é um nome de "
        "modelo conhecido (tiny, base, small, medium, large-v3, ...). "
        "Passe --whisper-model com o caminho de uma pasta de modelo faster-whisper (CTranslate2), "
        "ou omita a opção para usar o Whisper base multilíngue offline."
    )


def _default_threads() -> int:
    """Cores this process may use; CTranslate2's own default (4) oversubscribes small machines."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _compute_type(settings: TranscriptionSettings) -> str:
    """int8 on the CPU (what 2 cores afford), float16 on a GPU, unless the user chose."""
    if settings.compute_type:
        return settings.compute_type
    return "int8" if settings.device == "cpu" else "float16"


@functools.lru_cache(maxsize=1)
def _load_model(model: str, device: str, compute_type: str, threads: int) -> Any:
    """Load once per settings: ingesting a folder or a playlist reuses the same model for every file."""
    whisper = _import_faster_whisper()
    try:
        return whisper.WhisperModel(model, device=device, compute_type=compute_type, cpu_threads=threads)
    except Exception as exc:  # hub, disk, device and CTranslate2 errors all mean "cannot load"
        raise IngestError(
            f"Não foi possível carregar o modelo de transcrição '{model}' em {device}/{compute_type} "
            f"({type(exc).__name__}: {exc}). Nomes como 'small' são baixados do Hugging Face Hub, que pode "
            "estar inacessível; se era uma pasta local, confira o caminho; confira também --device e "
            "--compute-type. Omita --whisper-model para usar o Whisper base multilíngue offline."
        ) from exc


def whisper_language(language: str) -> str:
    """``pt-BR``/``PT``/``pt_br`` -> ``pt``: Whisper knows languages, not locales; unknown ones are refused.

    Checked before any model loads, so a typo costs nothing.
    """
    code = re.split(r"[-_]", language.strip().lower(), maxsplit=1)[0]
    known = _import_faster_whisper().tokenizer._LANGUAGE_CODES
    if code not in known:
        raise IngestError(
            f"Idioma '{language}' desconhecido para o Whisper. Use um código ISO de duas letras que o Whisper "
            "conheça, como 'pt' ou 'en' (--language ou [transcription] language na configuração)."
        )
    return code


def _check_language(settings: TranscriptionSettings, whisper_model: Any, language: str) -> None:
    """Refuse to run an English-only model on another language: it would emit fluent garbage."""
    if language == "en" or whisper_model.model.is_multilingual:
        return
    raise IngestError(
        f"O modelo de transcrição '{settings.model}' só reconhece inglês, mas o idioma pedido é '{language}'. "
        + _MODEL_HINT
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
    """Duration of the audio in seconds, from the headers when they have it, else by decoding (in chunks)."""
    path = Path(path)
    duration = _probe(path)
    if duration is not None:
        return duration
    return sum(len(chunk) for _, chunk in _decode_chunks(path)) / _SAMPLING_RATE


def _check_duration(path: Path, seconds: float, settings: TranscriptionSettings) -> None:
    """Refuse audio longer than ``[transcription] max_duration_hours`` (checked before decoding, or while)."""
    limit = settings.max_duration_hours * 3600
    if seconds > limit:
        raise IngestError(
            f"{path.name}: o áudio tem {_hours(seconds)}, mais que o máximo de {settings.max_duration_hours:g} h "
            "([transcription] max_duration_hours). Corte o arquivo em partes (por exemplo com 'ffmpeg -ss INÍCIO "
            "-t DURAÇÃO') ou aumente o limite se a gravação for mesmo tão longa"
        )


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def _decode_chunks(path: Path, seconds: float = _CHUNK_SECONDS) -> Iterator[tuple[float, Any]]:
    """The audio track as 16 kHz mono float32, ``seconds`` at a time: (offset in seconds, samples).

    Decoding a whole lecture at once costs about 0.8 GB per hour of audio
    (the 16-bit buffer, its float copy and Whisper's features of all of it);
    in chunks, memory stays the same for a 20-minute and a 6-hour file. The
    frames pass the very steps of faster-whisper's ``decode_audio`` (its
    helpers), so a file shorter than one chunk gives the same samples as before.
    """
    import av
    import numpy as np
    from faster_whisper.audio import _group_frames, _ignore_invalid_frames, _resample_frames

    size = int(seconds * _SAMPLING_RATE)
    resampler = av.audio.resampler.AudioResampler(format="s16", layout="mono", rate=_SAMPLING_RATE)
    pending: list[Any] = []
    buffered = emitted = 0
    try:
        with av.open(str(path), mode="r", metadata_errors="ignore") as container:
            frames = _resample_frames(
                _group_frames(_ignore_invalid_frames(container.decode(audio=0)), 500000), resampler
            )
            for frame in frames:
                pending.append(frame.to_ndarray().reshape(-1))
                buffered += len(pending[-1])
                while buffered >= size:
                    joined = np.concatenate(pending)
                    yield emitted / _SAMPLING_RATE, joined[:size].astype(np.float32) / 32768.0
                    emitted += size
                    pending, buffered = [joined[size:]], len(joined) - size
    except av.FFmpegError as exc:
        raise _open_error(path, exc) from exc
    except IndexError as exc:  # decode(audio=0) on a file without an audio stream
        raise _no_audio_error(path) from exc
    if buffered or not emitted:
        joined = np.concatenate(pending) if pending else np.zeros(0, dtype=np.int16)
        if not emitted and len(joined) == 0:
            raise _no_audio_error(path)
        yield emitted / _SAMPLING_RATE, joined.astype(np.float32) / 32768.0


def _cue(words: list[Any], total: float) -> Cue | None:
    start = min(max(float(words[0].start), 0.0), total)
    end = min(max(float(words[-1].end), start), total)
    text = "".join(w.word for w in words).strip()
    return Cue(start, end, text) if text else None


def _segment_cues(seg: Any, total: float) -> Iterator[Cue]:
    """One Whisper segment as cues that start and end at words, split where the speaker pauses."""
    words = [w for w in (seg.words or []) if w.word.strip()]
    if not words:  # a model without alignment heads gives no words: keep the segment's own times
        end = min(float(seg.end), total)
        text = seg.text.strip()
        if text:
            yield Cue(min(float(seg.start), end), end, text)
        return
    group: list[Any] = []
    for word in words:
        if group and float(word.start) - float(group[-1].end) >= _PAUSE_SECONDS:
            cue = _cue(group, total)
            if cue:
                yield cue
            group = []
        group.append(word)
    cue = _cue(group, total)
    if cue:
        yield cue


def _cues(segments: Any, offset: float, end: float) -> Iterator[Cue]:
    """The cues of each Whisper segment of one chunk, on the file's clock and clamped to the chunk's audio."""
    try:
        for seg in segments:
            for cue in _segment_cues(seg, end - offset):
                yield Cue(cue.start + offset, cue.end + offset, cue.text) if offset else cue
    except RuntimeError as exc:  # CTranslate2 failures (e.g. out of memory) surface here
        raise IngestError(f"A transcrição falhou no meio do arquivo: {exc}") from exc


def transcribe(
    path: Path,
    settings: TranscriptionSettings,
    *,
    language: str | None = None,
    progress: Progress | None = None,
) -> Iterator[Cue]:
    """Transcribe an audio/video file into timed cues that start and end at words.

    ``language`` (default: the settings') is a Whisper language code or a
    locale (``pt-BR``). Everything that can be checked up front (file, its
    duration against ``max_duration_hours``, language, model, the first
    chunk's decoding) is checked before this returns, so the caller gets an
    :class:`IngestError` right away rather than on the first ``next()``; the
    returned iterator then decodes and recognises the rest lazily, one chunk
    of audio (:data:`_CHUNK_SECONDS`) at a time, so memory does not grow
    with the length of the recording.
    """
    path = Path(path)
    duration = _probe(path)  # fail on a bad file before spending seconds loading a model
    if duration is not None:
        _check_duration(path, duration, settings)
    code = whisper_language(language or settings.language)
    resolved = resolve_model(settings.model, settings.cache_dir)
    whisper_model = _load_model(
        resolved, settings.device, _compute_type(settings), settings.threads or _default_threads()
    )
    _check_language(settings, whisper_model, code)
    chunks = _decode_chunks(path)
    first = next(chunks)
    return _heard(whisper_model, code, settings, (path, duration), itertools.chain([first], chunks), progress)


def _heard(
    whisper_model: Any,
    code: str,
    settings: TranscriptionSettings,
    probed: tuple[Path, float | None],
    chunks: Iterator[tuple[float, Any]],
    progress: Progress | None,
) -> Iterator[Cue]:
    """Recognise each chunk in turn, its cues on the file's clock, progress in seconds of the whole file."""
    path, duration = probed
    total = duration or 0.0
    heard = 0.0
    for offset, audio in chunks:
        end = offset + len(audio) / _SAMPLING_RATE
        _check_duration(path, end, settings)  # headers without a duration: counted as it is decoded
        segments, info = whisper_model.transcribe(
            audio,
            language=code,
            vad_filter=settings.vad,
            condition_on_previous_text=False,
            word_timestamps=True,
            beam_size=5,
        )
        end = offset + min(float(info.duration), len(audio) / _SAMPLING_RATE)
        total = max(total, end)
        if progress is not None and offset == 0:
            progress(0.0, total)
        for cue in _cues(segments, offset, end):
            heard = cue.end
            yield cue
            if progress is not None:
                progress(min(heard, total), total)
        if progress is not None:
            progress(end, total)
    if progress is not None:
        progress(total, total)


#: A media file to transcribe in a worker: its path (readable there) and the Whisper language code.
MediaItem = tuple[str, str]


def transcription_stage(settings: TranscriptionSettings) -> Stage[TranscriptionSettings, MediaItem, list[Cue]]:
    """Whole files to cues in a worker: the model loads on the worker's first file, once per process."""
    setup = functools.partial(worker_settings, settings)
    return Stage(f"whisper:{model_label(settings.model)}", setup, transcribe_file)


def worker_settings(settings: TranscriptionSettings, cpus: int) -> TranscriptionSettings:
    """The settings of a worker with ``cpus`` cores: that many threads, unless the settings fix a number.

    Loading is left to the first file, so a model that cannot load fails each
    file with its reason, as it does in a local run.
    """
    if cpus > 0 and settings.threads == 0:
        return settings.model_copy(update={"threads": cpus})
    return settings


def transcribe_file(settings: TranscriptionSettings, item: MediaItem) -> list[Cue]:
    """The stage function: every cue of one file (the driver stores them in one transaction)."""
    path, language = item
    return list(transcribe(Path(path), settings, language=language))
