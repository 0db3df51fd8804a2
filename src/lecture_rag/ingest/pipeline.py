"""Files → store: discovery, metadata, hashing, one transaction per video.

Each video is written in its own transaction, so a bad file or a killed
process never damages what is already stored, and a rerun redoes only the
files whose content (or segmentation settings) changed.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lecture_rag.config import SegmentationSettings, TranscriptionSettings
from lecture_rag.errors import IngestError, LectureRagError
from lecture_rag.ingest.readers import SUPPORTED_SUFFIXES, detect_format, nurc_video_id, parse_json, read_cues
from lecture_rag.ingest.segment import SegmentStats, clean_cues, windows
from lecture_rag.ingest.transcribe import MEDIA_SUFFIXES, model_label, transcribe, whisper_language
from lecture_rag.records import Cue, Video
from lecture_rag.store import EmptyVideoError, StorageError, Store

READER_VERSION = "1"
MANIFEST_NAME = "videos.csv"
_SIDECAR_KEYS = {"title", "course", "url", "language", "video_id"}
_YT_IN_NAME = re.compile(r"\[([A-Za-z0-9_-]{11})\]")
_LANG_SUFFIX = re.compile(r"\.(?:[a-z]{2,3})(?:[-_][A-Za-z]{2,4})?$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")

ProgressFn = Callable[[float, float], None]


@dataclass(slots=True)
class VideoMeta:
    """What the user told us about a video (flags, sidecar or manifest)."""

    video_id: str | None = None
    title: str | None = None
    course: str | None = None
    url: str | None = None
    language: str | None = None

    def merged(self, other: VideoMeta) -> VideoMeta:
        """Fields of ``self`` win; missing ones come from ``other``."""
        return VideoMeta(*(getattr(self, f) if getattr(self, f) else getattr(other, f) for f in self.__slots__))


@dataclass(slots=True)
class FileResult:
    path: Path | str  # a file, or the URL of a video
    video_id: str
    status: str  # added | replaced | unchanged
    segments: int = 0
    duration: float = 0.0
    stats: SegmentStats | None = None


@dataclass(slots=True)
class IngestReport:
    done: list[FileResult] = field(default_factory=list)
    failed: list[tuple[Path | str, str]] = field(default_factory=list)


@dataclass(slots=True)
class IngestOptions:
    segmentation: SegmentationSettings
    meta: VideoMeta = field(default_factory=VideoMeta)
    transcription: TranscriptionSettings = field(default_factory=TranscriptionSettings)
    column: str | None = None

    def whisper_key(self, language: str) -> str:
        """What shapes a Whisper transcript: a change re-transcribes, anything else keeps it."""
        t = self.transcription
        return f"|s{model_label(t.model)}|l{whisper_language(language)}|v{t.vad}|q{t.compute_type}"

    def segmentation_key(self) -> str:
        """What shapes the segments of any transcript."""
        seg = self.segmentation
        return (
            f"|r{READER_VERSION}|w{seg.window_seconds}|m{seg.max_window_seconds}|o{seg.overlap_seconds}|c{self.column}"
        )


def whisper_source(options: IngestOptions) -> str:
    """The transcript source a video transcribed here records (``whisper:base``)."""
    return f"whisper:{model_label(options.transcription.model)}"


def _supported_suffixes() -> frozenset[str]:
    return SUPPORTED_SUFFIXES | MEDIA_SUFFIXES


def discover(paths: Iterable[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Expand directories (recursively, sorted) into candidate files.

    Returns (files, problems). Manifests and sidecars are metadata, not
    transcripts, and are skipped; unknown suffixes inside a directory are
    reported so the user sees every file that was not ingested.
    """
    suffixes = _supported_suffixes()
    files: list[Path] = []
    problems: list[tuple[Path, str]] = []
    for path in paths:
        if not path.exists():
            problems.append((path, "o caminho não existe; confira o nome e tente de novo"))
        elif path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if child.name == MANIFEST_NAME or child.name.startswith(".") or _is_sidecar(child):
                    continue
                if child.suffix.lower() in suffixes:
                    files.append(child)
                else:
                    problems.append((child, f"formato não suportado ({child.suffix or 'sem extensão'})"))
        else:
            files.append(path)
    return files, problems


def _is_sidecar(path: Path) -> bool:
    """A ``NAME.json`` next to a transcript or media file that holds only metadata."""
    if path.suffix.lower() != ".json":
        return False
    data = _small_json(path)
    return isinstance(data, dict) and bool(data) and set(data) <= _SIDECAR_KEYS


def _small_json(path: Path) -> Any:
    if path.stat().st_size > 64_000:
        return None
    try:
        return parse_json(path.read_text(encoding="utf-8-sig"))  # absurd nesting is a ValueError too
    except (ValueError, UnicodeDecodeError):
        return None


def derive_video_id(path: Path) -> str:
    """The predictable id of a file's video.

    NURC files map to their recording (``SP_EF_405``) so human and ASR
    transcripts share an id; yt-dlp names (``Title [VIDEOID].pt.vtt``) give the
    YouTube id; otherwise the file name without extension and language tag,
    with unsafe characters replaced by ``-``.
    """
    nurc = nurc_video_id(path)
    if nurc:
        return nurc
    match = _YT_IN_NAME.search(path.name)
    if match:
        return match.group(1)
    stem = _LANG_SUFFIX.sub("", path.stem) if path.suffix.lower() in {".vtt", ".srt"} else path.stem
    return safe_video_id(stem) or "video"


def safe_video_id(value: str | None) -> str | None:
    """A video id with unsafe characters replaced by ``-``, wherever it came from (None if nothing is left).

    One rule for file names, ``--video-id``, sidecars and manifests: ids end up
    in URLs, reports and the web app's paths.
    """
    return _UNSAFE.sub("-", value or "").strip("-") or None


def file_meta(path: Path, manifest: dict[str, VideoMeta]) -> VideoMeta:
    """Metadata for one file: its sidecar ``NAME.json`` over the directory manifest."""
    meta = VideoMeta()
    sidecar = path.with_suffix(".json")
    if sidecar != path and sidecar.exists():
        data = _small_json(sidecar)
        if isinstance(data, dict):
            meta = VideoMeta(**{k: str(v) for k, v in data.items() if k in _SIDECAR_KEYS})
            meta.video_id = safe_video_id(meta.video_id)
    from_manifest = manifest.get(path.name) or manifest.get(path.stem)
    if from_manifest:
        meta = meta.merged(from_manifest)
    match = _YT_IN_NAME.search(path.name)
    if match and not meta.url:
        meta.url = f"https://www.youtube.com/watch?v={match.group(1)}"
    return meta


def load_manifest(directory: Path) -> dict[str, VideoMeta]:
    """``videos.csv`` (columns: file, video_id, title, course, url, language) keyed by file."""
    path = directory / MANIFEST_NAME
    if not path.exists():
        return {}
    out: dict[str, VideoMeta] = {}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            key = (row.get("file") or row.get("video_id") or "").strip()
            if key:
                out[key] = VideoMeta(
                    video_id=safe_video_id(row.get("video_id")),
                    title=row.get("title") or None,
                    course=row.get("course") or None,
                    url=row.get("url") or None,
                    language=row.get("language") or None,
                )
    return out


def content_hash(path: Path, options: IngestOptions, language: str) -> str:
    """Hash of the bytes and of everything that shapes the segments (and, for media, the transcript)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    digest.update(options.segmentation_key().encode())
    if _is_media(path):
        digest.update(options.whisper_key(language).encode())
    else:
        digest.update(f"|l{language}".encode())
    return digest.hexdigest()


def _is_media(path: Path) -> bool:
    return path.suffix.lower() in MEDIA_SUFFIXES


def _cues_of(path: Path, options: IngestOptions, progress: ProgressFn | None, language: str) -> Iterator[Cue]:
    if _is_media(path):
        return transcribe(path, options.transcription, language=language, progress=progress)
    return read_cues(path, column=options.column)


def store_cues(store: Store, video: Video, cues: Iterable[Cue], options: IngestOptions, name: str) -> FileResult:
    """Window ``cues`` and store them as ``video`` in one transaction (the old version stays if anything fails).

    ``name`` is what the messages call the source (a file name, a video's URL).
    """
    stats = SegmentStats()
    drafts = windows(clean_cues(cues, stats), options.segmentation)
    previous = store.source_hash(video.video_id)
    try:
        ids = store.replace_video(video, drafts)
    except EmptyVideoError as exc:
        raise IngestError(
            f"{name}: nenhuma fala encontrada (legendas vazias ou todas duplicadas, ou áudio sem fala "
            "reconhecível). Confira se é a transcrição ou o vídeo certo."
        ) from exc
    stored = store.get_video(video.video_id)
    return FileResult(
        name,
        video.video_id,
        "replaced" if previous else "added",
        len(ids),
        stored.duration if stored else 0.0,
        stats,
    )


def ingest_file(
    store: Store,
    path: Path,
    meta: VideoMeta,
    options: IngestOptions,
    progress: ProgressFn | None = None,
) -> FileResult:
    """Ingest one file; a no-op when the same content was ingested with the same settings."""
    video_id = safe_video_id(meta.video_id) or derive_video_id(path)
    language = meta.language or options.transcription.language
    if _is_media(path):
        language = whisper_language(language)  # the language Whisper is told is the one stored
    digest = content_hash(path, options, language)
    unchanged = unchanged_result(store, path, video_id, digest)
    if unchanged:
        return unchanged
    cues = _cues_of(path, options, progress, language)
    video = Video(
        video_id=video_id,
        title=meta.title or path.stem,
        course=meta.course or "",
        url=meta.url or "",
        language=language,
        source_path=str(path.resolve()),
        source_hash=digest,
        transcript_source=whisper_source(options) if _is_media(path) else f"file:{detect_format(path)}",
    )
    result = store_cues(store, video, cues, options, path.name)
    result.path = path
    return result


def unchanged_result(store: Store, source: Path | str, video_id: str, digest: str) -> FileResult | None:
    """The result of a no-op when ``video_id`` is stored with this very ``digest``, else None."""
    if store.source_hash(video_id) != digest:
        return None
    video = store.get_video(video_id)
    n, duration = (video.n_segments, video.duration) if video else (0, 0.0)
    return FileResult(source, video_id, "unchanged", n, duration)


def ingest_paths(
    store: Store,
    paths: Iterable[Path],
    options: IngestOptions,
    *,
    on_file: Callable[[Path], None] | None = None,
    progress: ProgressFn | None = None,
) -> IngestReport:
    """Ingest files and directories; one bad file never stops the others.

    Every file that fails is reported by name with the reason, whatever the
    failure: a bad transcript or bad metadata (its message), and also an
    error nobody foresaw (a defect met on one file must not hide the rest of
    the batch, its report, or the indexing of the good files).
    """
    files, problems = discover(paths)
    report = IngestReport(failed=list(problems))
    single = len(files) == 1 and not problems
    manifests: dict[Path, dict[str, VideoMeta]] = {}
    for path in files:
        if on_file:
            on_file(path)
        try:
            if path.parent not in manifests:
                manifests[path.parent] = _manifest(path.parent)
            meta = file_meta(path, manifests[path.parent])
            if single:
                meta = options.meta.merged(meta)
            else:
                meta = VideoMeta(course=options.meta.course, language=options.meta.language).merged(meta)
            report.done.append(ingest_file(store, path, meta, options, progress))
        except StorageError:
            raise  # a full disk or a read-only store fails every file alike: stop the batch, say why
        except LectureRagError as exc:
            report.failed.append((path, str(exc)))
        except (OSError, UnicodeError, ValueError) as exc:
            report.failed.append((path, f"não foi possível ler o arquivo: {_short(exc)}"))
        except Exception as exc:  # anything else is a defect: report it and go on
            report.failed.append(
                (
                    path,
                    f"erro inesperado ({type(exc).__name__}: {_short(exc)}); o arquivo não foi ingerido e os "
                    "demais seguem. Confira o arquivo; se ele estiver certo, relate o problema junto com ele",
                )
            )
    return report


def _manifest(directory: Path) -> dict[str, VideoMeta]:
    """The folder's manifest; one that cannot be read fails each file of the folder, naming the manifest.

    Ingesting them without it would give them the wrong ids and titles.
    """
    try:
        return load_manifest(directory)
    except LectureRagError:
        raise
    except Exception as exc:  # encoding, CSV or file errors alike
        raise IngestError(
            f"o manifesto {directory / MANIFEST_NAME} não pôde ser lido ({type(exc).__name__}: {_short(exc)}), "
            "e sem ele os vídeos desta pasta ficariam com ids e títulos errados. Corrija-o (CSV em UTF-8 com as "
            "colunas file, video_id, title, course, url, language) e rode de novo"
        ) from exc


def _short(exc: BaseException) -> str:
    """An exception's message for the report, cut short (a hostile file can make it huge)."""
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:300] + "…"
