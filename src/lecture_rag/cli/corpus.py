"""Corpus commands: ``ingest``, ``index`` and ``corpus list|show|edit|remove``."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from lecture_rag.batch import Engine, open_engine
from lecture_rag.cli.common import (
    EngineOpt,
    JsonOpt,
    RayAddressOpt,
    StoreOpt,
    WorkersOpt,
    console,
    err_console,
    index_corpus,
    print_json,
    progress_bar,
    settings_for,
    user_errors,
    with_batch,
    with_flags,
)
from lecture_rag.errors import LectureRagError
from lecture_rag.ingest.pipeline import (
    EDITABLE,
    IngestOptions,
    IngestReport,
    VideoMeta,
    checked_manifest,
    ingest_paths,
    metadata_changes,
)
from lecture_rag.ingest.remote import ingest_urls, is_url
from lecture_rag.links import hhmmss, safe_url
from lecture_rag.store import Store, open_store


@user_errors
def ingest(
    sources: Annotated[
        list[str],
        typer.Argument(
            help="Arquivos de legenda/transcrição/mídia, diretórios, ou URLs de vídeo, playlist ou canal (yt-dlp).",
            metavar="FONTES...",
        ),
    ],
    store: StoreOpt = None,
    video_id: Annotated[str | None, typer.Option(help="Id do vídeo (só com um arquivo).")] = None,
    title: Annotated[str | None, typer.Option(help="Título (só com um arquivo).")] = None,
    course: Annotated[str | None, typer.Option(help="Disciplina/curso (para URLs, em vez do canal).")] = None,
    url: Annotated[str | None, typer.Option(help="URL do vídeo (só com um arquivo).")] = None,
    media_base_url: Annotated[
        str | None,
        typer.Option(
            help="URL base onde o curso hospeda as gravações: cada aula sem URL recebe esta base + o caminho "
            "do seu arquivo de mídia dentro da pasta ingerida."
        ),
    ] = None,
    language: Annotated[
        str | None, typer.Option(help="Idioma da aula (padrão da configuração: pt); o Whisper o recebe, não adivinha.")
    ] = None,
    column: Annotated[str | None, typer.Option(help="Coluna de texto em CSV NURC (text, mark ou prediction).")] = None,
    whisper_model: Annotated[
        str | None,
        typer.Option(help="Modelo faster-whisper (nome ou pasta CTranslate2); padrão: Whisper base offline."),
    ] = None,
    device: Annotated[str | None, typer.Option(help="Onde transcrever: cpu, cuda ou auto.")] = None,
    compute_type: Annotated[
        str | None, typer.Option(help="Tipo de cálculo do CTranslate2 (padrão: int8 na CPU, float16 na GPU).")
    ] = None,
    window: Annotated[float | None, typer.Option(help="Duração alvo dos segmentos, em segundos.")] = None,
    overlap: Annotated[float | None, typer.Option(help="Sobreposição entre segmentos, em segundos.")] = None,
    no_index: Annotated[bool, typer.Option("--no-index", help="Não indexar depois de ingerir.")] = False,
    manifest: Annotated[
        Path | None,
        typer.Option(
            help="Manifesto do curso (CSV ou TOML: arquivo ou URL → título, curso, URL da mídia, idioma); "
            "sem ele, vale o lecture-rag.toml ou manifest.csv de cada pasta.",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Nas falhas, também o texto do yt-dlp ou do leitor.")
    ] = False,
    engine: EngineOpt = None,
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = None,
) -> None:
    """Ingerir transcrições (VTT, SRT, json3, Whisper JSON, JSONL, CSV NURC), áudio/vídeo ou URLs (yt-dlp)."""
    settings = with_batch(settings_for(store), engine, ray_address, workers)
    settings = with_flags(
        settings,
        {
            **settings.segmentation.flag_overrides(window=window, overlap=overlap),
            "transcription.model": whisper_model,
            "transcription.device": device,
            "transcription.compute_type": compute_type,
            "transcription.language": language,
        },
    )
    urls = [s for s in sources if is_url(s)]
    paths = [Path(s) for s in sources if not is_url(s)]
    _check_single_file_flags(paths, urls, video_id=video_id, title=title, url=url)
    options = IngestOptions(
        segmentation=settings.segmentation,
        meta=VideoMeta(video_id=video_id, title=title, course=course, url=url, language=language),
        transcription=settings.transcription,
        column=column,
        media_base_url=_media_base(media_base_url),
        limits=settings.ingest,
        manifest=_read_manifest(manifest),
    )
    report = IngestReport()
    # the engine before the store: a cluster that does not answer writes nothing
    with _terminate_as_exit(), open_engine(settings.batch) as batch:
        with open_store(settings) as st, progress_bar() as bar:
            if paths:
                report = _ingest_files(st, bar, paths, options, batch)
            if urls:
                remote = _ingest_urls(st, bar, urls, options)
                report.done += remote.done
                report.failed += remote.failed
                report.details.update(remote.details)
        _print_ingest_report(report, verbose)
        if report.done and not no_index:
            index_corpus(settings, rebuild=False, engine=batch)
    if report.done:
        _print_next_step(no_index)
    if report.failed:
        raise typer.Exit(1)


def _media_base(value: str | None) -> str | None:
    """``--media-base-url`` checked: an http(s) URL with a host, or a usage error."""
    if value is None:
        return None
    if not safe_url(value, relative=False):
        raise LectureRagError(
            f"--media-base-url '{value}' não é uma URL http(s); ex.: --media-base-url https://midia.exemplo.edu/aulas/"
        )
    return value


@contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """SIGTERM (``kill``, a service manager) unwinds like Ctrl+C: downloads' temporary files are removed.

    Python's default for SIGTERM ends the process at once, skipping every
    ``finally``; raised as :class:`SystemExit` in the main thread, the same
    clean-up runs as for SIGINT (the download folder, the open transaction).
    """

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check_single_file_flags(paths: list[Path], urls: list[str], **flags: str | None) -> None:
    """``--video-id``, ``--title`` and ``--url`` name one file: refused, not ignored, for anything else."""
    given = [f"--{name.replace('_', '-')}" for name, value in flags.items() if value is not None]
    if not given:
        return
    if urls:
        raise LectureRagError(
            f"{', '.join(given)} vale(m) só para um arquivo, não para URLs (uma playlist tem vários vídeos). "
            "Ingira o vídeo e depois dê o título com 'lecture-rag corpus edit ID --title …', ou use um "
            "manifesto (--manifest) com a URL e o título."
        )
    if len(paths) != 1 or paths[0].is_dir():
        raise LectureRagError(
            f"{', '.join(given)} vale(m) só para um arquivo; para uma pasta ou vários arquivos, use um "
            "manifesto do curso (lecture-rag.toml ou manifest.csv na pasta, ou --manifest)."
        )


def _read_manifest(path: Path | None) -> dict[str, VideoMeta]:
    """``--manifest``: read now, so that a bad one stops the ingest before anything is stored."""
    if path is None:
        return {}
    if not path.is_file():
        raise LectureRagError(f"Manifesto {path} não encontrado. Confira o caminho.")
    return checked_manifest(path)


def _print_next_step(no_index: bool) -> None:
    """What to do after an ingest, in one line."""
    if no_index:
        hint = "Próximo passo: 'lecture-rag index' para indexar, depois 'lecture-rag ask \"sua pergunta\"'."
    else:
        hint = (
            "Próximo passo: 'lecture-rag ask \"sua pergunta\"' no terminal ou 'lecture-rag serve' para a página; "
            "títulos e cursos: 'lecture-rag corpus edit ID --title …'."
        )
    err_console.print(hint, highlight=False)


def _ingest_files(st: Store, bar: Progress, paths: list[Path], options: IngestOptions, engine: Engine) -> IngestReport:
    """Files through ``engine``: transcription progress in seconds of audio here, in files on other engines."""
    files_task = bar.add_task("Ingerindo", total=None)
    label = "Transcrevendo" if engine.in_process else f"Transcrevendo arquivos ({engine.name})"
    media_task = bar.add_task(label, total=None, visible=False)

    def on_file(path: Path) -> None:
        bar.update(files_task, description=f"Ingerindo {escape(short_name(path.name))}")
        bar.advance(files_task)

    def on_media(done: float, total: float) -> None:
        bar.update(media_task, completed=done, total=total, visible=True)

    report = ingest_paths(st, paths, options, on_file=on_file, progress=on_media, engine=engine)
    bar.update(files_task, description="Ingestão", total=len(report.done) + len(report.failed))
    return report


def _ingest_urls(st: Store, bar: Progress, urls: list[str], options: IngestOptions) -> IngestReport:
    """Overall progress (videos) and the current video's download or transcription."""
    overall = bar.add_task("Vídeos", total=len(urls))
    current = bar.add_task("", total=None, visible=False)

    def on_video(label: str) -> None:
        bar.update(overall, description=f"Vídeos: {escape(short_name(label))}")
        bar.update(current, visible=False, completed=0, total=None)

    def step(what: str, done: float, total: float) -> None:
        bar.update(current, description=escape(what), completed=done, total=total, visible=True)

    report = ingest_urls(
        st, urls, options, on_video=on_video, on_count=lambda n, t: bar.update(overall, completed=n, total=t), step=step
    )
    bar.update(overall, description="Vídeos")
    bar.update(current, visible=False)
    return report


def _print_ingest_report(report: IngestReport, verbose: bool = False) -> None:
    if report.done:
        _print_done(report)
    for path, reason in report.failed:
        # A failed file by its whole path (which one of several same-named files), a video by its URL.
        err_console.print(f"[bold red]Falhou:[/] {escape(str(path))}: {escape(reason)}", highlight=False)
        detail = report.details.get(_shown(path))
        if verbose and detail:
            err_console.print(f"  [dim]detalhe: {escape(detail)}[/]", highlight=False)
    if report.failed:
        err_console.print(
            f"{len(report.done)} arquivo(s) ou vídeo(s) ingerido(s), {len(report.failed)} com erro. "
            "Corrija os itens listados e rode de novo: os já ingeridos não serão refeitos."
        )


def _print_done(report: IngestReport) -> None:
    """The table of what was stored (none when nothing was: an empty table before an error says nothing)."""
    status_pt = {
        "added": "adicionado",
        "replaced": "substituído",
        "unchanged": "sem mudança",
        "updated": "dados atualizados",
    }
    table = Table(title="Ingestão")
    table.add_column("arquivo ou URL", overflow="fold")  # a name cut to 'sentences_S…' says nothing
    for col in ("vídeo", "situação", "segmentos", "duração", "repetições removidas"):
        table.add_column(col, overflow="fold")
    for item in report.done:
        dups = str(item.stats.duplicates) if item.stats else "-"
        table.add_row(
            escape(_shown(item.path)),
            escape(item.video_id),
            status_pt[item.status],
            str(item.segments),
            hhmmss(item.duration),
            dups,
        )
    console.print(table)
    for item in report.done:
        for change in item.changes:
            console.print(f"{escape(item.video_id)}: {escape(change)}", highlight=False)


def short_name(name: str, width: int = 32) -> str:
    """A long file name or URL cut in the middle for a progress bar: its start and its end both tell it apart."""
    if len(name) <= width:
        return name
    keep = width - 1
    return f"{name[: keep // 2]}…{name[-(keep - keep // 2) :]}"


def _shown(source: Path | str) -> str:
    """A file by its name, a video by its URL."""
    return source.name if isinstance(source, Path) else source


@user_errors
def index(
    store: StoreOpt = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Recalcular tudo (novo embedder).")] = False,
    compact: Annotated[
        bool,
        typer.Option("--compact", help="Fundir deltas e remoções do índice numa nova base."),
    ] = False,
    prune_cache: Annotated[
        bool, typer.Option("--prune-cache", help="Apagar do cache vetores de textos que saíram do acervo.")
    ] = False,
    engine: EngineOpt = None,
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Indexar o acervo (embeddings E5 e BM25); retoma de onde parou.

    Aulas novas ou removidas entram no índice publicado como um delta (segundos); --compact funde os deltas.
    """
    settings = with_batch(settings_for(store), engine, ray_address, workers)
    with open_engine(settings.batch) as batch:
        stats = index_corpus(settings, rebuild=rebuild, compact=compact, prune_cache=prune_cache, engine=batch)
    if as_json:
        print_json(stats)
        return
    console.print(" ".join(f"{k}={v}" for k, v in stats.items()), highlight=False)


@user_errors
def corpus_list(
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Listar as aulas do acervo."""
    with open_store(settings_for(store), create=False) as st:
        videos = st.list_videos()
    if as_json:
        print_json(videos)
        return
    table = Table(title=f"Acervo: {len(videos)} aula(s)")
    for col in ("vídeo", "título", "curso", "duração", "segmentos", "transcrição", "URL"):
        table.add_column(col)
    for v in videos:
        cells = (v.video_id, v.title, v.course, hhmmss(v.duration), str(v.n_segments), v.source_label, v.url or "-")
        table.add_row(*(escape(cell) for cell in cells))
    console.print(table)


@user_errors
def corpus_show(
    video_id: Annotated[str, typer.Argument(help="Id do vídeo.")],
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Mostrar os segmentos de uma aula."""
    with open_store(settings_for(store), create=False) as st:
        video = st.get_video(video_id)
        if video is None:
            raise LectureRagError(f"Vídeo '{video_id}' não está no acervo. Veja 'lecture-rag corpus list'.")
        segments = st.segments(video_id)
    if as_json:
        print_json(segments)
        return
    header = f"[bold]{escape(video.title)}[/] ({escape(video.video_id)}) — {hhmmss(video.duration)}"
    console.print(f"{header}, {escape(video.url or 'sem URL')}", highlight=False)
    details = [f"Transcrição: {video.source_label}", f"idioma: {video.language}"]
    if video.channel:
        details.append(f"canal: {video.channel}")
    if video.upload_date:
        details.append(f"publicado em {video.upload_date}")
    console.print(escape(" · ".join(details)), highlight=False)
    for s in segments:
        console.print(
            f"[cyan]{s.corpus_id}[/] {hhmmss(s.start)}–{hhmmss(s.end)} {escape(s.url)}\n  {escape(s.text[:300])}",
            highlight=False,
        )


@user_errors
def corpus_edit(
    video_id: Annotated[str, typer.Argument(help="Id do vídeo.")],
    store: StoreOpt = None,
    title: Annotated[str | None, typer.Option(help="Novo título.", show_default=False)] = None,
    course: Annotated[str | None, typer.Option(help="Nova disciplina/curso.", show_default=False)] = None,
    url: Annotated[str | None, typer.Option(help="Nova URL do vídeo ou da mídia.", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Mudar o título, o curso ou a URL de uma aula; uma nova ingestão mantém a mudança."""
    if title is None and course is None and url is None:
        raise LectureRagError("Diga o que mudar: --title, --course e/ou --url.")
    with open_store(settings_for(store), create=False) as st:
        before = st.get_video(video_id)
        if before is None:
            raise LectureRagError(f"Vídeo '{video_id}' não está no acervo. Veja 'lecture-rag corpus list'.")
        st.update_video(video_id, title=title, course=course, url=url)
        after = st.get_video(video_id)
    assert after is not None
    if as_json:
        print_json(after)
        return
    changes = metadata_changes(before, after)
    for change in changes or [f"nada mudou ({', '.join(EDITABLE.values())} já eram esses)"]:
        console.print(f"{escape(video_id)}: {escape(change)}", highlight=False)


YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Não pedir confirmação.")]


def confirm(question: str, yes: bool) -> None:
    """Ask before destroying something; ``--yes`` skips it, and without a terminal to ask on it is required."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise LectureRagError(f"{question} Confirme com --yes (não há terminal para perguntar).")
    if not typer.confirm(question, default=False):
        raise typer.Exit(1)


@user_errors
def corpus_remove(
    video_ids: Annotated[list[str], typer.Argument(help="Ids dos vídeos a remover.")],
    store: StoreOpt = None,
    no_index: Annotated[bool, typer.Option("--no-index", help="Não reindexar depois de remover.")] = False,
    yes: YesOpt = False,
) -> None:
    """Remover aulas (e seus segmentos) do acervo; reindexa (rápido: os vetores estão no cache)."""
    settings = settings_for(store)
    confirm(f"Remover {len(video_ids)} aula(s) do acervo ({', '.join(video_ids)})?", yes)
    missing = []
    with open_store(settings, create=False) as st:
        for vid in video_ids:
            if st.remove_video(vid):
                console.print(f"Removido: {escape(vid)}", highlight=False)
            else:
                missing.append(vid)
        left = st.segment_count()
    if len(missing) < len(video_ids) and left and not no_index:
        index_corpus(settings, rebuild=False)
    if missing:
        raise LectureRagError(f"Não encontrado(s) no acervo: {', '.join(missing)}. Veja 'lecture-rag corpus list'.")
