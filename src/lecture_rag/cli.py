"""The ``lecture-rag`` command line.

Thin by design: each command parses flags, builds settings, calls one stage
and renders its result. User errors (:class:`LectureRagError`) are printed as
one clear message with exit code 2, never as a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from lecture_rag.config import Settings, load_settings
from lecture_rag.errors import LectureRagError
from lecture_rag.index.store import Store
from lecture_rag.links import hhmmss

app = typer.Typer(
    name="lecture-rag",
    help="Perguntas e respostas sobre videoaulas, com citações no segundo certo.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
corpus_app = typer.Typer(help="Ver e gerenciar o acervo de aulas.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")

console = Console()
err_console = Console(stderr=True)

StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", help="Diretório do acervo (padrão: $LECTURE_RAG_HOME).", show_default=False),
]
F = TypeVar("F", bound=Callable[..., Any])


def user_errors(func: F) -> F:
    """Turn LectureRagError into a clear message and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LectureRagError as exc:
            err_console.print(f"[bold red]Erro:[/] {exc}", highlight=False)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _settings(store: Path | None) -> Settings:
    return load_settings(store)


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )


@app.command()
@user_errors
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Arquivos de legenda/transcrição/mídia ou diretórios.")],
    store: StoreOpt = None,
    video_id: Annotated[str | None, typer.Option(help="Id do vídeo (só com um arquivo).")] = None,
    title: Annotated[str | None, typer.Option(help="Título (só com um arquivo).")] = None,
    course: Annotated[str | None, typer.Option(help="Disciplina/curso.")] = None,
    url: Annotated[str | None, typer.Option(help="URL do vídeo (só com um arquivo).")] = None,
    language: Annotated[str | None, typer.Option(help="Idioma da aula, ex.: pt.")] = None,
    column: Annotated[
        str | None, typer.Option(help="Coluna de texto em CSV NURC (text, mark ou prediction).")
    ] = None,
    whisper_model: Annotated[
        str | None, typer.Option(help="Modelo faster-whisper (caminho ou nome) para áudio/vídeo.")
    ] = None,
    window: Annotated[float | None, typer.Option(help="Duração alvo dos segmentos, em segundos.")] = None,
    overlap: Annotated[float | None, typer.Option(help="Sobreposição entre segmentos, em segundos.")] = None,
    no_index: Annotated[bool, typer.Option("--no-index", help="Não indexar depois de ingerir.")] = False,
) -> None:
    """Ingerir transcrições (VTT, SRT, json3, Whisper JSON, JSONL, CSV NURC) ou áudio/vídeo."""
    from lecture_rag.ingest.pipeline import IngestOptions, VideoMeta, ingest_paths

    settings = _settings(store)
    seg = settings.segmentation
    if window is not None or overlap is not None:
        seg = seg.model_copy(
            update={
                "window_seconds": window or seg.window_seconds,
                "max_window_seconds": max(seg.max_window_seconds, (window or 0) * 1.5),
                "overlap_seconds": seg.overlap_seconds if overlap is None else overlap,
            }
        )
    options = IngestOptions(
        segmentation=seg,
        meta=VideoMeta(video_id=video_id, title=title, course=course, url=url, language=language),
        whisper_model=whisper_model,
        column=column,
    )
    with Store(settings.home) as st, _progress() as bar:
        files_task = bar.add_task("Ingerindo", total=None)
        media_task = bar.add_task("Transcrevendo", total=None, visible=False)

        def on_file(path: Path) -> None:
            bar.update(files_task, description=f"Ingerindo {path.name}")
            bar.advance(files_task)

        def on_media(done: float, total: float) -> None:
            bar.update(media_task, completed=done, total=total, visible=True)

        report = ingest_paths(st, paths, options, on_file=on_file, progress=on_media)
        bar.update(files_task, description="Ingestão", total=len(report.done) + len(report.failed))
    _print_ingest_report(report)
    if (report.done and not no_index and report.failed == []) or (report.done and not no_index):
        _maybe_index(settings)
    if report.failed:
        raise typer.Exit(1)


def _print_ingest_report(report: Any) -> None:
    status_pt = {"added": "adicionado", "replaced": "substituído", "unchanged": "sem mudança"}
    table = Table(title="Ingestão")
    for col in ("arquivo", "vídeo", "situação", "segmentos", "duração", "duplicatas removidas"):
        table.add_column(col)
    for item in report.done:
        dups = str(item.stats.duplicates) if item.stats else "-"
        table.add_row(
            item.path.name, item.video_id, status_pt[item.status], str(item.segments),
            hhmmss(item.duration), dups,
        )
    console.print(table)
    for path, reason in report.failed:
        err_console.print(f"[bold red]Falhou:[/] {path}: {reason}", highlight=False)
    if report.failed:
        err_console.print(
            f"{len(report.done)} arquivo(s) ingerido(s), {len(report.failed)} com erro. "
            "Corrija os arquivos listados e rode de novo: os já ingeridos não serão refeitos."
        )


def _maybe_index(settings: Settings) -> None:
    """Run the index stage after ingest when it is available."""
    try:
        from lecture_rag.index import build as _build  # noqa: F401
    except ImportError:
        return
    index_corpus(settings, rebuild=False)


def index_corpus(settings: Settings, *, rebuild: bool) -> dict[str, Any]:
    from lecture_rag.index.build import build_indexes
    from lecture_rag.retrieve.embedders import make_embedder

    embedder = make_embedder(settings.embedder)
    with Store(settings.home, create=False) as st, _progress() as bar:
        task = bar.add_task("Indexando", total=None)

        def on_progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        stats: dict[str, Any] = build_indexes(st, embedder, settings, rebuild=rebuild, progress=on_progress)
    return stats


@corpus_app.command("list")
@user_errors
def corpus_list(
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Saída em JSON.")] = False,
) -> None:
    """Listar as aulas do acervo."""
    with Store(_settings(store).home, create=False) as st:
        videos = st.list_videos()
    if as_json:
        rows = [
            {"video_id": v.video_id, "title": v.title, "course": v.course, "url": v.url,
             "language": v.language, "duration": v.duration, "segments": v.n_segments}
            for v in videos
        ]
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
        return
    table = Table(title=f"Acervo: {len(videos)} aula(s)")
    for col in ("vídeo", "título", "curso", "duração", "segmentos", "URL"):
        table.add_column(col)
    for v in videos:
        table.add_row(v.video_id, v.title, v.course, hhmmss(v.duration), str(v.n_segments), v.url or "-")
    console.print(table)


@corpus_app.command("show")
@user_errors
def corpus_show(
    video_id: Annotated[str, typer.Argument(help="Id do vídeo.")],
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Saída em JSON.")] = False,
) -> None:
    """Mostrar os segmentos de uma aula."""
    with Store(_settings(store).home, create=False) as st:
        video = st.get_video(video_id)
        if video is None:
            raise LectureRagError(f"Vídeo '{video_id}' não está no acervo. Veja 'lecture-rag corpus list'.")
        segments = st.segments(video_id)
    if as_json:
        rows = [
            {"corpus_id": s.corpus_id, "start": s.start, "end": s.end, "url": s.url_at(), "text": s.text}
            for s in segments
        ]
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
        return
    header = f"[bold]{video.title}[/] ({video.video_id}) — {hhmmss(video.duration)}"
    console.print(f"{header}, {video.url or 'sem URL'}")
    for s in segments:
        console.print(
            f"[cyan]{s.corpus_id}[/] {hhmmss(s.start)}–{hhmmss(s.end)} {s.url_at() or ''}\n  {s.text[:300]}",
            highlight=False,
        )


@corpus_app.command("remove")
@user_errors
def corpus_remove(
    video_ids: Annotated[list[str], typer.Argument(help="Ids dos vídeos a remover.")],
    store: StoreOpt = None,
) -> None:
    """Remover aulas (e seus segmentos) do acervo."""
    missing = []
    with Store(_settings(store).home, create=False) as st:
        for vid in video_ids:
            if st.remove_video(vid):
                console.print(f"Removido: {vid}")
            else:
                missing.append(vid)
    if missing:
        raise LectureRagError(
            f"Não encontrado(s) no acervo: {', '.join(missing)}. Veja 'lecture-rag corpus list'."
        )


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
