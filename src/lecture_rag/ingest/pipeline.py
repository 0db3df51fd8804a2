"""Files → store: discovery, metadata, hashing, one transaction per video.

Each video is written in its own transaction, so a bad file or a killed
process never damages what is already stored, and a rerun redoes only the
files whose content (or segmentation settings) changed.

Every file takes one way whatever the batch engine (:func:`ingest_paths`):
planned here, its transcript heard by the engine when it is a media file
that changed, stored here in the order of the files (so corpus ids do not
depend on the engine). The local engine hears a file when its turn comes and
streams it into the store; another (``--engine ray``) hears them all at once
in its workers.
"""

from __future__ import annotations

import csv
import hashlib
import re
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeGuard
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, ValidationError

from lecture_rag.batch import LOCAL, Engine, Job, Stage
from lecture_rag.config import IngestSettings, SegmentationSettings, TranscriptionSettings
from lecture_rag.errors import IngestError, LectureRagError
from lecture_rag.ingest.readers import (
    SUPPORTED_SUFFIXES,
    detect_format,
    nurc_video_id,
    parse_json,
    read_cues,
    read_user_text,
    transcript_source,
)
from lecture_rag.ingest.segment import MAX_LOST_SHARE, SegmentStats, clean_cues, windows
from lecture_rag.ingest.transcribe import (
    MEDIA_SUFFIXES,
    MediaItem,
    model_label,
    transcribe,
    transcribe_file,
    transcription_stage,
    whisper_language,
)
from lecture_rag.records import Cue, Video, human_transcript, machine_transcript, transcript_source_label
from lecture_rag.store import KEEP, EmptyVideoError, Origin, StorageError, Store
from lecture_rag.userfiles import printable, require_regular_file

READER_VERSION = "1"
MANIFEST_NAME = "videos.csv"
#: The course manifests ``ingest`` reads in a folder, first found wins (``videos.csv`` is the older name).
MANIFEST_NAMES = ("lecture-rag.toml", "manifest.csv", MANIFEST_NAME)
_SIDECAR_KEYS = {"title", "course", "url", "language", "video_id"}
_YT_IN_NAME = re.compile(r"\[([A-Za-z0-9_-]{11})\]")
_LANG_SUFFIX = re.compile(r"\.(?:[a-z]{2,3})(?:[-_][A-Za-z]{2,4})?$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")

ProgressFn = Callable[[float, float], None]


#: Where a value a person entered came from. A value with no recorded source was given by a flag.
FLAG, MANIFEST, SIDECAR = "flag", "manifest", "sidecar"
#: The sources read from files that stay in the folder: re-read on every ingest, their unchanged values
#: must not undo a later ``corpus edit`` or flag (see :func:`wanted`).
LISTED = frozenset({MANIFEST, SIDECAR})
_META_FIELDS = ("video_id", "title", "course", "url", "language")


@dataclass(slots=True)
class VideoMeta:
    """What the user told us about a video (flags, sidecar or manifest), and which of them told each field."""

    video_id: str | None = None
    title: str | None = None
    course: str | None = None
    url: str | None = None
    language: str | None = None
    sources: dict[str, str] = field(default_factory=dict)  # field → manifest | sidecar (absent: a flag)
    # What the manifest or sidecar says for each field, also where a flag overrides it: the store
    # records it as seen, so that a value a flag overrode does not count as new next time.
    listed: dict[str, str] = field(default_factory=dict)

    def merged(self, other: VideoMeta) -> VideoMeta:
        """Fields of ``self`` win; missing ones come from ``other`` (each with its source)."""
        mine = {f: getattr(self, f) for f in _META_FIELDS if getattr(self, f)}
        theirs = {f: getattr(other, f) for f in _META_FIELDS if getattr(other, f) and f not in mine}
        sources = {f: s for f, s in self.sources.items() if f in mine}
        sources.update({f: s for f, s in other.sources.items() if f in theirs})
        return VideoMeta(**mine, **theirs, sources=sources, listed={**other.listed, **self.listed})

    def source(self, name: str) -> str:
        """Who gave field ``name``: a manifest, a sidecar, or (by default) a flag."""
        return self.sources.get(name, FLAG)

    def listed_in(self, source: str) -> VideoMeta:
        """These values, each marked as given by ``source`` (a manifest, a sidecar)."""
        given = {f: str(getattr(self, f)) for f in (*EDITABLE, "language") if getattr(self, f)}
        return replace(self, sources=dict.fromkeys(given, source), listed=given)


@dataclass(slots=True)
class FileResult:
    path: Path | str  # a file, or the URL of a video
    video_id: str
    status: str  # added | replaced | unchanged | updated (metadata only)
    segments: int = 0
    duration: float = 0.0
    stats: SegmentStats | None = None
    changes: list[str] = field(default_factory=list)  # what changed in the stored metadata, one line each


@dataclass(slots=True)
class IngestReport:
    done: list[FileResult] = field(default_factory=list)
    failed: list[tuple[Path | str, str]] = field(default_factory=list)
    details: dict[str, str] = field(default_factory=dict)  # a failure's third-party text, for --verbose


@dataclass(slots=True)
class IngestOptions:
    segmentation: SegmentationSettings
    meta: VideoMeta = field(default_factory=VideoMeta)
    transcription: TranscriptionSettings = field(default_factory=TranscriptionSettings)
    column: str | None = None
    # Where the course team hosts the recordings: a lecture without a URL gets this base plus its
    # media file's path relative to the ingested folder (``--media-base-url``).
    media_base_url: str | None = None
    limits: IngestSettings = field(default_factory=IngestSettings)  # what ``ingest URL`` may fetch
    manifest: dict[str, VideoMeta] = field(default_factory=dict)  # ``--manifest``: over each folder's own

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
    reported so the user sees every file that was not ingested. Inside a
    directory, a media file beside a same-named transcript (``aula.mp4`` and
    ``aula.srt``) is that lecture's recording (:func:`media_file`), not a
    second lecture to transcribe.
    """
    suffixes = _supported_suffixes()
    files: list[Path] = []
    problems: list[tuple[Path, str]] = []
    for path in paths:
        if not path.exists():
            problems.append((path, "o caminho não existe; confira o nome e tente de novo"))
        elif path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if child.name in MANIFEST_NAMES or child.name.startswith(".") or _is_sidecar(child):
                    continue
                if _is_media(child) and _has_transcript(child):
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
    if not path.is_file() or path.stat().st_size > 64_000:  # a FIFO named .json would block the read
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


class Sidecar(BaseModel):
    """A ``NAME.json`` sidecar: every field a string or null (null: not given); anything else is refused."""

    model_config = ConfigDict(extra="ignore", strict=True)

    title: str | None = None
    course: str | None = None
    url: str | None = None
    language: str | None = None
    video_id: str | None = None


def metadata_text(value: str | None) -> str | None:
    """A metadata value as stored: no control characters or escape sequences, one line, None when empty."""
    return " ".join(printable(value or "").split()) or None


def _sidecar_meta(sidecar: Path, data: dict[str, Any]) -> VideoMeta:
    try:
        fields = Sidecar.model_validate(data)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise IngestError(
            f"{sidecar}: o campo '{where}' deve ser texto (ou null), mas é {type(data.get(where)).__name__} "
            f"({_short(ValueError(repr(data.get(where))))}). Corrija o arquivo e rode de novo"
        ) from None
    values: dict[str, Any] = {k: metadata_text(v) for k, v in fields.model_dump().items()}
    meta = VideoMeta(**values)
    meta.video_id = safe_video_id(meta.video_id)
    return meta.listed_in(SIDECAR)


def file_meta(path: Path, manifest: dict[str, VideoMeta]) -> VideoMeta:
    """Metadata for one file: its sidecar ``NAME.json`` over the directory manifest."""
    meta = VideoMeta()
    sidecar = path.with_suffix(".json")
    if sidecar != path and sidecar.exists():
        data = _small_json(sidecar)
        if isinstance(data, dict):
            meta = _sidecar_meta(sidecar, data)
    from_manifest = manifest_entry(manifest, path.name, path.stem)
    if from_manifest:
        meta = meta.merged(from_manifest)
    return meta


def url_from_name(path: Path) -> str:
    """The YouTube URL a yt-dlp file name carries (``Title [VIDEOID].pt.vtt``), else "".

    A default, like the title from the file name: a URL a person entered (flag, manifest,
    ``corpus edit``) wins over it, on a re-ingest too.
    """
    match = _YT_IN_NAME.search(path.name)
    return f"https://www.youtube.com/watch?v={match.group(1)}" if match else ""


def load_manifest(directory: Path) -> dict[str, VideoMeta]:
    """The folder's course manifest (the first of :data:`MANIFEST_NAMES` there), keyed by file or URL."""
    path = manifest_path(directory)
    return {} if path is None else read_manifest(path)


def manifest_path(directory: Path) -> Path | None:
    """The course manifest ``ingest`` reads in ``directory``, if there is one."""
    return next((directory / name for name in MANIFEST_NAMES if (directory / name).is_file()), None)


def read_manifest(path: Path) -> dict[str, VideoMeta]:
    """A course manifest: file name (or video URL) → title, course, media URL, language, video id.

    CSV columns: ``file`` (or ``url`` for a video by URL), ``title``, ``course``, ``media_url``
    (``url`` in a ``file`` row), ``language``, ``video_id``. TOML: a top-level ``course`` (and
    ``language``) for every lecture, and one ``[[lecture]]`` table per file or URL with the same keys.
    Why: a course team sets titles, courses and playable media for a whole folder at once.
    """
    require_regular_file(path, "o manifesto do curso")
    if path.suffix.lower() == ".toml":
        data = tomllib.loads(read_user_text(path, "o manifesto do curso em TOML"))
        defaults = {k: data.get(k) for k in ("course", "language")}
        rows = [{**defaults, **row} for row in data.get("lecture", data.get("aula", [])) if isinstance(row, dict)]
    else:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.DictReader(handle))
    out: dict[str, VideoMeta] = {}
    for row in rows:
        row = {str(k).strip().lower(): str(v).strip() for k, v in row.items() if k is not None and v is not None}
        key = row.get("file") or row.get("url") or row.get("video_id") or ""
        if not key:
            continue
        media = row.get("media_url") or (row.get("url") if row.get("file") else None)
        out[key] = VideoMeta(
            video_id=safe_video_id(row.get("video_id")),
            title=metadata_text(row.get("title")),
            course=metadata_text(row.get("course")),
            url=metadata_text(media),
            language=metadata_text(row.get("language")),
        ).listed_in(MANIFEST)
    return out


def manifest_entry(manifest: dict[str, VideoMeta], *keys: str) -> VideoMeta | None:
    """The manifest's entry for the first of ``keys`` (file name, stem, URL, id) it has."""
    return next((manifest[k] for k in keys if k and k in manifest), None)


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
        if (media := media_file(path)) is not None:  # a recording placed or moved beside it is stored
            digest.update(f"|p{media}".encode())
    if options.media_base_url:  # so is a new base URL for the folder
        digest.update(f"|b{options.media_base_url}".encode())
    return digest.hexdigest()


def _is_media(path: Path) -> bool:
    return path.suffix.lower() in MEDIA_SUFFIXES


def _has_transcript(media: Path) -> bool:
    """A transcript with the media file's name sits beside it (the media is then its recording)."""
    return any(media.with_suffix(suffix).is_file() for suffix in SUPPORTED_SUFFIXES if suffix != ".json")


def media_file(path: Path) -> Path | None:
    """The local recording of the lecture ingested from ``path``: itself, or a same-named sibling media file.

    ``aula.mp4`` is its own recording; ``aula.srt`` plays ``aula.mp4`` (or
    ``aula.webm``…) when one sits next to it, so a course that ingests its
    transcripts still gets a player without transcribing anything.
    """
    if _is_media(path):
        return path.resolve()
    for suffix in sorted(MEDIA_SUFFIXES):
        for candidate in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
            if candidate.is_file():
                return candidate.resolve()
    return None


def hosted_url(base: str, media: Path, root: Path) -> str:
    """``base`` + the media file's path relative to the ingested folder ``root`` (URL-encoded).

    A course that hosts its recordings in the same tree as its transcripts
    maps a folder to a base URL once instead of giving one ``--url`` per file.
    """
    try:
        relative = media.resolve().relative_to(root.resolve())
    except ValueError:
        relative = Path(media.name)
    return base.rstrip("/") + "/" + "/".join(quote(part) for part in relative.parts)


#: The metadata a person enters, and how the change lines call them.
EDITABLE = {"title": "título", "course": "curso", "url": "URL"}


def wanted(given: VideoMeta, origins: Mapping[str, Origin]) -> dict[str, str]:
    """The fields an ingest sets from what a person entered: the newest statement of a person wins.

    A flag's value always; a manifest's or sidecar's only when it differs from the value that
    source last applied (``origins``): one unchanged since then is older than a later
    ``corpus edit`` or flag, which it must not undo. A lecture with no recorded origin (new, or
    stored before they were recorded) takes every value given.
    """
    out: dict[str, str] = {}
    for name in EDITABLE:
        value = getattr(given, name)
        origin = origins.get(name)
        if value and (given.source(name) not in LISTED or origin is None or origin.listed != value):
            out[name] = value
    return out


def applied_origins(given: VideoMeta, applied: Iterable[str]) -> dict[str, Origin]:
    """What the store records now: who set the fields set now (``applied``, and the language given),
    and every value the manifest or sidecar gives, applied or not, to tell next time whether it changed.

    A manifest value that a flag overrode is recorded as seen (its field keeps its source): a folder
    re-ingested later must not take it for a new statement that undoes the flag.
    """
    setters = {*applied, *(["language"] if given.language else [])}
    return {
        name: Origin(given.source(name) if name in setters else KEEP, given.listed.get(name))
        for name in setters | set(given.listed)
    }


def settle(video: Video, given: VideoMeta, stored: Video | None, origins: Mapping[str, Origin] | None = None) -> Video:
    """``video`` with what a person entered kept: a field set now (:func:`wanted`) wins, else the
    stored value, else ``video``'s own default (the file name, the site's title).

    Why: re-ingesting corrected captions must not wipe the title and course someone typed, and an
    unchanged manifest must not undo a ``corpus edit`` made after it.
    """
    now = wanted(given, origins or {})
    kept: dict[str, Any] = {
        f: now.get(f) or (getattr(stored, f) if stored else "") or getattr(video, f) for f in EDITABLE
    }
    return replace(video, **kept)


def metadata_changes(before: Video | None, after: Video) -> list[str]:
    """One line per field a re-ingest or an edit changes (``título: 'aula' → 'Aula 1'``)."""
    if before is None:
        return []
    lines = [
        f"{word}: {getattr(before, f) or '(vazio)'!r} → {getattr(after, f) or '(vazio)'!r}"
        for f, word in EDITABLE.items()
        if getattr(before, f) != getattr(after, f)
    ]
    if after.transcript_source and before.transcript_source != after.transcript_source:
        lines.append(
            f"transcrição: {transcript_source_label(before.transcript_source)} → "
            f"{transcript_source_label(after.transcript_source)}"
        )
    return lines


def check_transcript_kind(stored: Video | None, video: Video) -> None:
    """Refuse to replace a person's transcript with speech recognition of the same lecture.

    The human transcript is the better text and the ASR one would replace it silently; a user who
    wants both stores the ASR one under another id.
    """
    if stored is None or not human_transcript(stored.transcript_source):
        return
    if not machine_transcript(video.transcript_source):
        return
    raise IngestError(
        f"a aula {video.video_id} já tem {transcript_source_label(stored.transcript_source)} no acervo, e "
        f"esta é {transcript_source_label(video.transcript_source)}: ela não substitui a humana. Para guardar as "
        f"duas, ingira esta com outro id (--video-id {video.video_id}-asr); para trocar mesmo assim, remova a "
        f"aula antes (lecture-rag corpus remove {video.video_id})"
    )


def store_cues(
    store: Store, video: Video, cues: Iterable[Cue], options: IngestOptions, name: str, given: VideoMeta | None = None
) -> FileResult:
    """Window ``cues`` and store them as ``video`` in one transaction (the old version stays if anything fails).

    ``name`` is what the messages call the source (a file name, a video's URL); ``given`` is the
    metadata a person entered now (see :func:`settle`).
    """
    given = given or VideoMeta()
    stored = store.get_video(video.video_id)
    origins = store.origins(video.video_id) if stored else {}
    video = settle(video, given, stored, origins)
    check_transcript_kind(stored, video)
    stats = SegmentStats()
    drafts = windows(_loud(clean_cues(cues, stats), stats, name), options.segmentation)
    try:
        ids = store.replace_video(video, drafts, applied_origins(given, wanted(given, origins)))
    except EmptyVideoError as exc:
        raise IngestError(
            f"{name}: nenhuma fala encontrada (legendas vazias ou todas duplicadas, ou áudio sem fala "
            "reconhecível). Confira se é a transcrição ou o vídeo certo."
        ) from exc
    after = store.get_video(video.video_id)
    return FileResult(
        name,
        video.video_id,
        "replaced" if stored else "added",
        len(ids),
        after.duration if after else 0.0,
        stats,
        metadata_changes(stored, video),
    )


def _loud(cues: Iterator[Cue], stats: SegmentStats, name: str) -> Iterator[Cue]:
    """Pass the cleaned cues on; fail (inside the video's transaction, so nothing is stored) when speech was lost.

    The segmenter drops repeats; one whose words are not in the speech kept
    is speech lost. A few words are the noise of re-cut sentences; beyond
    :data:`MAX_LOST_SHARE` of the file the layout is one the segmenter does not
    understand, and a lecture stored without part of its speech must not pass
    for a good one.
    """
    yield from cues
    if stats.lost_share > MAX_LOST_SHARE:
        raise IngestError(
            f"{name}: {stats.lost_share:.0%} da fala do arquivo seria descartada como repetição sem que suas "
            f"palavras estejam no que fica (o limite é {MAX_LOST_SHARE:.0%}); nada foi gravado. Confira os tempos "
            "do arquivo (falas repetidas ou sobrepostas) e relate o problema junto com ele"
        )


@dataclass(slots=True)
class FilePlan:
    """What ingesting one file takes, worked out before its transcript is read or transcribed."""

    path: Path
    meta: VideoMeta
    video_id: str
    language: str
    digest: str
    unchanged: FileResult | None  # the no-op's result when this content is already stored

    @property
    def media(self) -> bool:
        return _is_media(self.path)


def plan_file(store: Store, path: Path, meta: VideoMeta, options: IngestOptions) -> FilePlan:
    """The file's video id, language and content hash, and whether it is already stored as it is."""
    require_regular_file(path, "uma transcrição ou um arquivo de áudio/vídeo")  # /dev/zero would hash forever
    video_id = safe_video_id(meta.video_id) or derive_video_id(path)
    language = meta.language or options.transcription.language
    if _is_media(path):
        language = whisper_language(language)  # the language Whisper is told is the one stored
    digest = content_hash(path, options, language)
    return FilePlan(path, meta, video_id, language, digest, unchanged_result(store, path, video_id, digest))


def write_file(store: Store, plan: FilePlan, cues: Iterable[Cue], options: IngestOptions) -> FileResult:
    """Store the file's cues as its video, in one transaction."""
    path, meta = plan.path, plan.meta
    media = media_file(path)
    video = Video(
        video_id=plan.video_id,
        title=meta.title or path.stem,
        course=meta.course or "",
        url=meta.url or url_from_name(path),
        language=plan.language,
        source_path=str(path.resolve()),
        source_hash=plan.digest,
        transcript_source=whisper_source(options) if plan.media else transcript_source(path, column=options.column),
        media_path=str(media) if media else "",
    )
    result = store_cues(store, video, cues, options, path.name, meta)
    result.path = path
    return result


def ingest_file(
    store: Store,
    path: Path,
    meta: VideoMeta,
    options: IngestOptions,
    progress: ProgressFn | None = None,
) -> FileResult:
    """Ingest one file as :func:`ingest_paths` does; a no-op when this content is stored with these settings."""
    plan = plan_file(store, path, meta, options)
    heard = _streamed(progress, options.transcription, (str(path), plan.language)) if _to_hear(plan, set()) else None
    return _store_planned(store, plan, heard, options)


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
    engine: Engine = LOCAL,
) -> IngestReport:
    """Ingest files and directories; one bad file never stops the others.

    Every file that fails is reported by name with the reason, whatever the
    failure: a bad transcript or bad metadata (its message), and also an
    error nobody foresaw (a defect met on one file must not hide the rest of
    the batch, its report, or the indexing of the good files).

    Each file is planned here (:func:`plan_file`), its transcript heard by
    ``engine`` when it is a media file that changed (:func:`_hearing`), and
    stored here, one transaction per file, in the order of ``paths``: the
    same files get the same corpus ids on any engine, and a killed ingest
    keeps every file stored before it. The local engine hears a file when its
    turn comes and streams it into the store (``progress`` in seconds of its
    audio); another engine hears them all at once in its workers
    (``progress`` in files).
    """
    files, problems = discover(paths)
    report = IngestReport(failed=list(problems))
    metas = _Metas(options, single=len(files) == 1 and not problems, roots=[p for p in paths if p.is_dir()])
    plans = [_plan_or_error(store, path, metas, options) for path in files]
    refuse_clashing_ids(plans)  # before anything is written: the second file would silently replace the first
    shared = _shared_ids(plans)
    media = [plan for plan in plans if _to_hear(plan, shared)]
    stage = _hearing(options.transcription, engine, progress)
    transcripts = engine.map(Job(stage, [(str(p.path), p.language) for p in media], ordered=True))

    in_files = None if engine.in_process else progress
    if in_files is not None and media:
        in_files(0, len(media))
    heard = 0
    for plan in plans:
        path = plan.path if isinstance(plan, FilePlan) else plan[0]
        if on_file:
            on_file(path)
        cues: _Heard | None = None
        if _to_hear(plan, shared):
            _, cues = next(transcripts)  # an engine failure (a worker lost) stops the batch: not this file's fault
            heard += 1
            if in_files is not None:
                in_files(heard, len(media))
        _store_reported(store, _fresh(store, plan, shared), cues, options, report)
    return report


def _store_reported(
    store: Store, plan: _Planned, cues: _Heard | None, options: IngestOptions, report: IngestReport
) -> None:
    """Store one file in its turn; its failure goes to the report, a storage failure stops the batch."""
    try:
        report.done.append(_store_planned(store, plan, cues, options))
    except StorageError:
        raise  # a full disk or a read-only store fails every file alike: stop the batch, say why
    except Exception as exc:
        report.failed.append((plan.path if isinstance(plan, FilePlan) else plan[0], _reason(exc)))


class _Metas:
    """Each file's metadata: its sidecar and folder manifest (read once per folder), with the flags applied."""

    def __init__(self, options: IngestOptions, *, single: bool, roots: Iterable[Path] = ()) -> None:
        self._options = options
        self._single = single
        self._manifests: dict[Path, dict[str, VideoMeta]] = {}
        self._roots = [r.resolve() for r in roots]

    def of(self, path: Path) -> VideoMeta:
        if path.parent not in self._manifests:
            self._manifests[path.parent] = {**_manifest(path.parent), **self._options.manifest}
        meta = file_meta(path, self._manifests[path.parent])
        if self._single:
            meta = self._options.meta.merged(meta)
        else:
            meta = VideoMeta(course=self._options.meta.course, language=self._options.meta.language).merged(meta)
        return self._hosted(path, meta)

    def _hosted(self, path: Path, meta: VideoMeta) -> VideoMeta:
        """With ``--media-base-url``, a lecture without a URL gets its recording's hosted URL."""
        base = self._options.media_base_url
        media = media_file(path) if base and not meta.url else None
        if base is None or media is None:
            return meta
        folder = path.resolve().parent
        root = next((r for r in self._roots if folder.is_relative_to(r)), folder)
        return replace(meta, url=hosted_url(base, media, root))


def _reason(exc: Exception) -> str:
    """Why a file failed, for the report: its message, or what went wrong reading it, or a defect."""
    if isinstance(exc, LectureRagError):
        return str(exc)
    if isinstance(exc, OSError | UnicodeError | ValueError):
        return f"não foi possível ler o arquivo: {_short(exc)}"
    return (  # anything else is a defect: report it and go on
        f"erro inesperado ({type(exc).__name__}: {_short(exc)}); o arquivo não foi ingerido e os "
        "demais seguem. Confira o arquivo; se ele estiver certo, relate o problema junto com ele"
    )


_Planned = FilePlan | tuple[Path, Exception]  # a file's plan, or why it could not be planned
_Heard = Iterable[Cue] | Exception  # a media file's transcript (streamed here, a list from a worker), or why it failed


def _shared_ids(plans: list[_Planned]) -> set[str]:
    """Video ids that more than one file of the batch is stored as (a human transcript and its recording)."""
    counts = Counter(plan.video_id for plan in plans if isinstance(plan, FilePlan))
    return {video_id for video_id, n in counts.items() if n > 1}


def refuse_clashing_ids(plans: Iterable[_Planned]) -> None:
    """Refuse a batch where two transcripts (or two recordings) would be stored as one video id.

    ``aula.vtt`` and ``aula.srt``, a yt-dlp ``.pt.vtt``/``.en.vtt`` pair or a
    manifest giving two files one id would each replace the other, and only
    the last would stay. A transcript and its recording (``aula.mp4`` and
    ``aula.vtt``) may share an id: the transcript, stored after it, wins, as
    before. Raises :class:`IngestError` naming both files and the ways out.
    """
    seen: dict[tuple[str, bool], Path] = {}
    for plan in plans:
        if not isinstance(plan, FilePlan) or not (plan.media or _recognised(plan.path)):
            continue  # a file that fails on its own (reported in its turn) replaces nothing
        key = (plan.video_id, plan.media)
        first = seen.setdefault(key, plan.path)
        if first.resolve() != plan.path.resolve():
            raise IngestError(
                f"{first} e {plan.path} seriam gravados como o mesmo vídeo '{plan.video_id}', e o segundo "
                "substituiria o primeiro. Nada foi gravado. Renomeie um deles, dê a cada um seu video_id (num "
                f"{MANIFEST_NAME} ou num arquivo NOME.json ao lado), ou ingira-os um de cada vez com --video-id"
            )


def _recognised(path: Path) -> bool:
    """Whether ``path`` is a transcript the readers recognise (its head only: cheap)."""
    try:
        detect_format(path)
    except (LectureRagError, OSError, ValueError):
        return False
    return True


def _to_hear(plan: _Planned, shared: set[str]) -> TypeGuard[FilePlan]:
    """A media file to transcribe: its content changed, or an earlier file of the batch may replace its video."""
    return isinstance(plan, FilePlan) and plan.media and (plan.unchanged is None or plan.video_id in shared)


def _fresh(store: Store, plan: _Planned, shared: set[str]) -> _Planned:
    """The plan as the store is now: an earlier file of the batch may have stored the same video id since."""
    if not isinstance(plan, FilePlan) or plan.video_id not in shared:
        return plan
    return replace(plan, unchanged=unchanged_result(store, plan.path, plan.video_id, plan.digest))


def _plan_or_error(store: Store, path: Path, metas: _Metas, options: IngestOptions) -> _Planned:
    try:
        return plan_file(store, path, metas.of(path), options)
    except StorageError:
        raise
    except Exception as exc:  # reported in its turn, like a local run does
        return path, exc


def _store_planned(store: Store, plan: _Planned, cues: _Heard | None, options: IngestOptions) -> FileResult:
    """One planned file into the store: its transcript from the worker, or its captions read here."""
    if isinstance(plan, tuple):
        raise plan[1]
    if plan.unchanged:
        return _metadata_only(store, plan)
    if isinstance(cues, Exception):
        raise cues
    return write_file(store, plan, _in_time_order(plan.path, options) if cues is None else cues, options)


#: Transcript files up to this size are read whole and put in time order before segmenting.
SORT_LIMIT_BYTES = 32 * 1024 * 1024


def _in_time_order(path: Path, options: IngestOptions) -> Iterable[Cue]:
    """A transcript's cues, sorted by start when the file is small enough to hold (else in file order).

    Why: some transcripts list the lecture more than once, each pass restarting at 0 (the NURC-SP
    files give it sentence by sentence, then again in shorter pieces). Streamed in file order, a
    piece of the second pass that fills a gap of the first arrives after its place was written
    out and is dropped with a warning, so the sample data warned on every ingest and lost speech.
    In time order the repeats are plain duplicates and the gaps are filled. Larger files stream
    (the segmenter reorders within ten minutes), so memory stays bounded.
    """
    cues = read_cues(path, column=options.column)
    if path.stat().st_size > SORT_LIMIT_BYTES:
        return cues
    return sorted(cues, key=lambda cue: cue.start)


def _metadata_only(store: Store, plan: FilePlan) -> FileResult:
    """An unchanged transcript whose metadata a flag or a changed manifest now changes: update only the metadata."""
    result = plan.unchanged
    assert result is not None
    stored = store.get_video(plan.video_id)
    if stored is None:
        return result
    fields: dict[str, Any] = wanted(plan.meta, store.origins(plan.video_id))
    after = replace(stored, **fields)
    result.changes = metadata_changes(stored, after)
    origins = applied_origins(plan.meta, fields)
    if fields:  # recorded even when the value is the same: the manifest now says it too
        store.update_video(plan.video_id, **fields, origins=origins)
    elif origins:
        store.record_origins(plan.video_id, origins)
    if result.changes:
        result.status = "updated"
    return result


def _hearing(
    settings: TranscriptionSettings, engine: Engine, progress: ProgressFn | None
) -> Stage[TranscriptionSettings, MediaItem, _Heard]:
    """The transcription stage, a file's failure sent back as a value: it fails that file, not the batch.

    In this process a transcript streams into the store as it is heard, with
    ``progress`` in seconds of audio; a worker elsewhere sends back every cue
    of the file at once.
    """
    stage = transcription_stage(settings)
    work = partial(_streamed, progress) if engine.in_process else _transcript_or_error
    return Stage(stage.name, stage.setup, work)


def _streamed(progress: ProgressFn | None, settings: TranscriptionSettings, item: MediaItem) -> _Heard:
    path, language = item
    try:
        return transcribe(Path(path), settings, language=language, progress=progress)
    except Exception as exc:
        return exc


def _transcript_or_error(settings: TranscriptionSettings, item: MediaItem) -> _Heard:
    try:
        return transcribe_file(settings, item)
    except Exception as exc:
        return exc


def _manifest(directory: Path) -> dict[str, VideoMeta]:
    """The folder's manifest; one that cannot be read fails each file of the folder, naming the manifest.

    Ingesting them without it would give them the wrong ids and titles.
    """
    path = manifest_path(directory)
    if path is None:
        return {}
    return checked_manifest(path, ", e sem ele os vídeos desta pasta ficariam com ids e títulos errados")


def checked_manifest(path: Path, consequence: str = "") -> dict[str, VideoMeta]:
    """:func:`read_manifest`, any failure to read it an :class:`IngestError` naming the file and the format."""
    try:
        return read_manifest(path)
    except LectureRagError:
        raise
    except Exception as exc:  # encoding, CSV, TOML or file errors alike
        raise IngestError(
            f"o manifesto {path} não pôde ser lido ({type(exc).__name__}: {_short(exc)}){consequence}. Corrija-o "
            "(CSV em UTF-8 com as colunas file, video_id, title, course, media_url, language, ou TOML com uma "
            "tabela [[lecture]] por arquivo) e rode de novo"
        ) from exc


def _short(exc: BaseException) -> str:
    """An exception's message for the report, cut short (a hostile file can make it huge)."""
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:300] + "…"
