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
from lecture_rag.report.serialize import hit_to_dict

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
    column: Annotated[str | None, typer.Option(help="Coluna de texto em CSV NURC (text, mark ou prediction).")] = None,
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
    if report.done and not no_index:
        index_corpus(settings, rebuild=False)
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
            item.path.name,
            item.video_id,
            status_pt[item.status],
            str(item.segments),
            hhmmss(item.duration),
            dups,
        )
    console.print(table)
    for path, reason in report.failed:
        err_console.print(f"[bold red]Falhou:[/] {path}: {reason}", highlight=False)
    if report.failed:
        err_console.print(
            f"{len(report.done)} arquivo(s) ingerido(s), {len(report.failed)} com erro. "
            "Corrija os arquivos listados e rode de novo: os já ingeridos não serão refeitos."
        )


def index_corpus(settings: Settings, *, rebuild: bool, prune_cache: bool = False) -> dict[str, Any]:
    from lecture_rag.index.build import build_indexes, prune_embedding_cache
    from lecture_rag.retrieve.embedders import make_embedder

    embedder = make_embedder(settings.embedder)
    with Store(settings.home, create=False) as st, _progress() as bar:
        task = bar.add_task("Indexando", total=None)

        def on_progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        stats: dict[str, Any] = build_indexes(st, embedder, settings, rebuild=rebuild, progress=on_progress)
        if prune_cache:
            stats["cache_pruned"] = prune_embedding_cache(st, embedder)
    return stats


Mode = Annotated[str, typer.Option("--mode", help="dense (E5), bm25 ou hybrid (RRF).")]


def _open_retriever(settings: Settings) -> Any:
    from lecture_rag.retrieve.embedders import make_embedder
    from lecture_rag.retrieve.search import Retriever

    st = Store(settings.home, create=False)
    return Retriever(st, make_embedder(settings.embedder), settings)


def _check_mode(mode: str) -> str:
    if mode not in {"dense", "bm25", "hybrid"}:
        raise LectureRagError(f"Modo de busca desconhecido: {mode!r}. Use dense, bm25 ou hybrid.")
    return mode


@app.command()
@user_errors
def index(
    store: StoreOpt = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Recalcular tudo (novo embedder).")] = False,
    prune_cache: Annotated[
        bool, typer.Option("--prune-cache", help="Apagar do cache vetores de textos que saíram do acervo.")
    ] = False,
) -> None:
    """Indexar o acervo (embeddings E5 e BM25); retoma de onde parou."""
    stats = index_corpus(_settings(store), rebuild=rebuild, prune_cache=prune_cache)
    console.print(" ".join(f"{k}={v}" for k, v in stats.items()), highlight=False)


@app.command()
@user_errors
def search(
    query: Annotated[str, typer.Argument(help="A pergunta.")],
    store: StoreOpt = None,
    k: Annotated[int, typer.Option("--k", min=1, max=200, help="Quantos segmentos.")] = 10,
    mode: Mode = "dense",
    course: Annotated[str | None, typer.Option(help="Só esta disciplina.")] = None,
    video: Annotated[str | None, typer.Option(help="Só este vídeo.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Saída em JSON.")] = False,
) -> None:
    """Buscar os segmentos mais próximos de uma pergunta."""
    settings = _settings(store)
    retriever = _open_retriever(settings)
    hits = retriever.search(query, k=k, mode=_check_mode(mode), course=course, video=video)
    if as_json:
        sys.stdout.write(json.dumps([hit_to_dict(h) for h in hits], ensure_ascii=False, indent=2) + "\n")
        return
    if not hits:
        console.print("Nenhum segmento encontrado.")
    for h in hits:
        d = hit_to_dict(h)
        score = "-" if h.score is None else f"{h.score:.4f}"
        console.print(
            f"[bold]{h.rank}.[/] Corpus ID {d['corpus_id']}  Score {score}  {d['inicio']}–{d['fim']}  "
            f"[cyan]{d['title']}[/]\n   {d['url'] or '(sem URL)'}\n   {d['text'][:400]}\n",
            highlight=False,
        )


def _make_llm(settings: Settings, llm: str | None) -> Any:
    """The answer LLM from ``--llm`` (none | openai | gguf:PATH) over the configured one."""
    from lecture_rag.generate.llm import make_llm

    cfg = settings.llm
    if llm is not None:
        cfg = cfg.model_copy(update={"backend": llm})
    return make_llm(cfg)


LLMOpt = Annotated[
    str | None,
    typer.Option("--llm", help="none (extrativa), openai ou gguf:/caminho/modelo.gguf (padrão: config)."),
]


@app.command()
@user_errors
def ask(
    question: Annotated[str, typer.Argument(help="A pergunta.")],
    store: StoreOpt = None,
    k: Annotated[int, typer.Option("--k", min=1, max=200)] = 10,
    mode: Mode = "dense",
    llm: LLMOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="text, markdown ou json.")] = "text",
    hide_urls: Annotated[bool, typer.Option("--hide-urls", help="Ocultar URLs (como no registro-semente).")] = False,
    number: Annotated[int, typer.Option("--number", help="Número da pergunta no registro markdown.")] = 1,
    course: Annotated[str | None, typer.Option(help="Só esta disciplina.")] = None,
    video: Annotated[str | None, typer.Option(help="Só este vídeo.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Tempo até o 1º token e tokens/s.")] = False,
) -> None:
    """Responder a uma pergunta com base nas aulas, citando os trechos."""
    from lecture_rag.generate.answer import AnswerEngine

    if fmt not in {"text", "markdown", "json"}:
        raise LectureRagError(f"Formato desconhecido: {fmt!r}. Use text, markdown ou json.")
    settings = _settings(store)
    engine = AnswerEngine(_open_retriever(settings), _make_llm(settings, llm), settings.llm)
    streaming = fmt == "text"
    if streaming:
        console.print("[bold]Resposta:[/] ", end="")
    answer = engine.answer(
        question,
        k=k,
        mode=_check_mode(mode),
        course=course,
        video=video,
        on_token=(lambda t: console.out(t, end="", highlight=False)) if streaming else None,
    )
    if fmt == "json":
        from lecture_rag.report.serialize import answer_to_dict
        from lecture_rag.report.serialize import hide_urls as hidden

        data = answer_to_dict(answer)
        sys.stdout.write(json.dumps(hidden(data) if hide_urls else data, ensure_ascii=False, indent=2) + "\n")
    elif fmt == "markdown":
        from lecture_rag.report.markdown import record_from_answer, render_record

        sys.stdout.write(render_record(record_from_answer(answer, number), hide_urls=hide_urls))
    else:
        _print_answer_text(answer, hide_urls, verbose)
    if answer.error:
        err_console.print(f"[bold red]Erro do LLM:[/] {answer.error}", highlight=False)
        raise typer.Exit(1)


def _print_answer_text(answer: Any, hide_urls: bool, verbose: bool) -> None:
    if answer.extractive or not answer.model:
        console.print(answer.text, highlight=False)
        console.print(
            "[dim]Para respostas redigidas, configure um LLM: LECTURE_RAG_LLM_BACKEND=openai com "
            "LECTURE_RAG_LLM_BASE_URL/LECTURE_RAG_LLM_MODEL (Ollama, vLLM, llama.cpp...), "
            "ou --llm gguf:/caminho/modelo.gguf.[/]"
        )
    else:
        console.print()
    if answer.no_citations:
        console.print("[yellow]Aviso: a resposta não cita nenhum trecho; confira nas fontes abaixo.[/]")
    if answer.invalid_citations:
        console.print(f"[yellow]Aviso: citações sem trecho correspondente ignoradas: {answer.invalid_citations}[/]")
    console.print("\n[bold]Referências:[/]")
    for ref in answer.references:
        times = ", ".join(
            f"[{t.number}] {hhmmss(t.start)}" + ("" if hide_urls or not t.url else f" {t.url}") for t in ref.times
        )
        console.print(f"- {ref.title} ({ref.video_id}): {times}", highlight=False)
    if not answer.references:
        console.print("- (nenhuma)")
    console.print("\n[bold]Segmentos recuperados:[/]")
    for h in answer.hits:
        url = "oculto" if hide_urls else (h.segment.url_at() or "sem URL")
        score = "-" if h.score is None else f"{h.score:.4f}"
        console.print(
            f"{h.rank}. [{hhmmss(h.segment.start)}–{hhmmss(h.segment.end)}] {h.segment.title} "
            f"(Corpus ID {h.segment.corpus_id}, score {score}) {url}",
            highlight=False,
        )
    if verbose and answer.first_token_s is not None:
        rate = answer.completion_tokens / max(1e-9, (answer.total_s or 0) - answer.first_token_s)
        console.print(
            f"[dim]modelo {answer.model}: 1º token em {answer.first_token_s:.2f}s, "
            f"{answer.completion_tokens} tokens em {answer.total_s:.2f}s ({rate:.1f} tokens/s), "
            f"prompt {answer.prompt_tokens} tokens, {len(answer.context)} trechos no contexto[/]"
        )


eval_app = typer.Typer(help="Avaliar a recuperação e as respostas.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")


@eval_app.command("retrieval")
@user_errors
def eval_retrieval(
    questions: Annotated[Path, typer.Argument(help="Perguntas em JSON Lines, ou um arquivo SQuAD.")],
    store: StoreOpt = None,
    k: Annotated[int, typer.Option("--k", min=1, max=200)] = 10,
    mode: Annotated[
        list[str] | None, typer.Option("--mode", help="dense, bm25, hybrid (repita; padrão: os três).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Saída em JSON.")] = False,
) -> None:
    """Recall@1/5/10, MRR@10 e nDCG@10 por modo, no total e por tipo de pergunta."""
    from lecture_rag.evaluate.questions import ensure_squad_corpus, is_squad, load_questions, load_squad
    from lecture_rag.evaluate.retrieval import by_type, evaluate, summarise, unanswerable_gap

    settings = _settings(store)
    modes = [_check_mode(m) for m in (mode or ["dense", "bm25", "hybrid"])]
    if is_squad(questions):
        paragraphs, qs = load_squad(questions)
        with Store(settings.home) as st:
            ensure_squad_corpus(st, paragraphs, str(questions.resolve()))
        index_corpus(settings, rebuild=False)
    else:
        qs = load_questions(questions)
    retriever = _open_retriever(settings)
    report: dict[str, Any] = {"questions": len(qs), "k": k, "modes": {}}
    with _progress() as bar:
        for m in modes:
            task = bar.add_task(f"Avaliando {m}", total=len(qs))

            def step(done: int, total: int, task: Any = task) -> None:
                bar.update(task, completed=done)

            def run(q: str, m: str = m) -> list[Any]:
                return list(retriever.search(q, k=k, mode=m))

            results = evaluate(qs, run, progress=step)
            overall = summarise(results)
            report["modes"][m] = {
                "n": overall.n,
                **overall.metrics,
                **unanswerable_gap(results),
                "by_type": {t: {"n": s.n, **s.metrics} for t, s in by_type(results).items()},
            }
    if as_json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
        return
    _print_retrieval_report(report)


def _print_retrieval_report(report: dict[str, Any]) -> None:
    cols = ["recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"]
    table = Table(title=f"Recuperação: {report['questions']} perguntas, k={report['k']}")
    for col in ["modo", "n", *cols]:
        table.add_column(col, justify="right")
    for m, row in report["modes"].items():
        table.add_row(m, str(row["n"]), *(f"{row[c]:.3f}" for c in cols))
    console.print(table)
    for m, row in report["modes"].items():
        if len(row["by_type"]) > 1 and len(row["by_type"]) <= 12:
            sub = Table(title=f"{m}: por tipo de pergunta")
            for col in ["tipo", "n", *cols]:
                sub.add_column(col, justify="right")
            for t, r in row["by_type"].items():
                sub.add_row(t, str(r["n"]), *(f"{r[c]:.3f}" for c in cols))
            console.print(sub)


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
            {
                "video_id": v.video_id,
                "title": v.title,
                "course": v.course,
                "url": v.url,
                "language": v.language,
                "duration": v.duration,
                "segments": v.n_segments,
            }
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
    no_index: Annotated[bool, typer.Option("--no-index", help="Não reindexar depois de remover.")] = False,
) -> None:
    """Remover aulas (e seus segmentos) do acervo; reindexa (rápido: os vetores estão no cache)."""
    settings = _settings(store)
    missing = []
    with Store(settings.home, create=False) as st:
        for vid in video_ids:
            if st.remove_video(vid):
                console.print(f"Removido: {vid}")
            else:
                missing.append(vid)
        left = st.segment_count()
    if len(missing) < len(video_ids) and left and not no_index:
        index_corpus(settings, rebuild=False)
    if missing:
        raise LectureRagError(f"Não encontrado(s) no acervo: {', '.join(missing)}. Veja 'lecture-rag corpus list'.")


def _make_judge(settings: Settings, judge_llm: str | None) -> Any:
    from lecture_rag.evaluate.judges import JUDGE_ENV_PREFIX
    from lecture_rag.generate.llm import make_llm

    cfg = settings.judge_llm
    if judge_llm is not None:
        cfg = cfg.model_copy(update={"backend": judge_llm})
    return make_llm(cfg, env_prefix=JUDGE_ENV_PREFIX)


@app.command("run")
@user_errors
def run_questions(
    questions: Annotated[Path, typer.Argument(help="Perguntas em JSON Lines (com 'label' opcional).")],
    name: Annotated[str, typer.Option("--name", help="Nome da rodada (retoma se já existir).")],
    store: StoreOpt = None,
    llm: LLMOpt = None,
    judge_llm: Annotated[
        str | None, typer.Option("--judge-llm", help="Juiz: none, openai ou gguf:CAMINHO (padrão: config).")
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=200)] = 10,
    mode: Mode = "dense",
    concurrency: Annotated[int, typer.Option(min=1, max=32, help="Pedidos simultâneos a LLMs HTTP.")] = 4,
    judges: Annotated[
        str, typer.Option("--judges", help="Juízes a rodar: ar, cr, g, label (separados por vírgula).")
    ] = "ar,cr,g,label",
) -> None:
    """Responder e avaliar todas as perguntas de um arquivo (retomável)."""
    from lecture_rag.evaluate.labels import scheme_from_settings
    from lecture_rag.evaluate.questions import load_questions
    from lecture_rag.evaluate.run import check_question_labels, execute_run, parse_judge_kinds, run_config
    from lecture_rag.evaluate.runs import RunStore
    from lecture_rag.generate.answer import AnswerEngine

    settings = _settings(store)
    kinds = parse_judge_kinds(judges)
    scheme = scheme_from_settings(settings.labels)
    qs = load_questions(questions)
    check_question_labels(qs, scheme)
    engine = AnswerEngine(_open_retriever(settings), _make_llm(settings, llm), settings.llm)
    judge = _make_judge(settings, judge_llm)
    config = run_config(
        engine, judge, k=k, mode=_check_mode(mode), questions_path=questions, kinds=kinds, scheme=scheme
    )
    runs = RunStore(engine.retriever.store)
    created = runs.start(name, config)
    console.print(f"Rodada '{name}' {'criada' if created else 'retomada'}: {len(qs)} perguntas.")
    if judge is None:
        console.print("[yellow]Nenhum juiz configurado: as notas ficam 'n/d' (LECTURE_RAG_JUDGE_LLM_*).[/]")
    with _progress() as bar:
        task = bar.add_task("Respondendo e avaliando", total=len(qs))
        stats = execute_run(
            runs,
            name,
            qs,
            engine,
            judge,
            k=k,
            mode=mode,
            concurrency=concurrency,
            kinds=kinds,
            scheme=scheme,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    console.print(
        f"{stats.answered} respondidas, {stats.judged} avaliadas, {stats.skipped} já prontas, "
        f"{stats.errors} com erro do LLM. Veja: lecture-rag report {name}"
    )


@app.command("runs")
@user_errors
def list_runs(store: StoreOpt = None) -> None:
    """Listar as rodadas de avaliação."""
    from lecture_rag.evaluate.runs import RunStore

    with Store(_settings(store).home, create=False) as st:
        rows = RunStore(st).summaries()
    table = Table(title="Rodadas")
    for col in ("nome", "criada", "perguntas", "anotadas", "LLM", "juiz"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["name"],
            r["created_at"],
            str(r["items"]),
            str(r["annotated"]),
            r["config"].get("llm", ""),
            r["config"].get("judge_llm", ""),
        )
    console.print(table)


@app.command()
@user_errors
def annotate(
    args: Annotated[list[str], typer.Argument(help="RODADA (modo terminal) ou: import RODADA ARQUIVO")],
    store: StoreOpt = None,
    annotator: Annotated[str, typer.Option("--annotator", "-a", help="Quem anota.")] = "",
) -> None:
    """Anotar respostas (c/p/i/n por tecla) ou importar rótulos: 'annotate import RODADA ARQUIVO'."""
    from lecture_rag.evaluate.runs import RunStore

    with Store(_settings(store).home, create=False) as st:
        runs = RunStore(st)
        if args[0] == "import":
            if len(args) != 3:
                raise LectureRagError("Uso: lecture-rag annotate import RODADA ARQUIVO.csv|.jsonl")
            from lecture_rag.evaluate.annotations import import_labels

            runs.require(args[1])
            n = import_labels(runs, args[1], Path(args[2]), annotator or "importado")
            console.print(f"{n} anotação(ões) importada(s) para a rodada '{args[1]}'.")
            return
        if len(args) != 1:
            raise LectureRagError("Uso: lecture-rag annotate RODADA [--annotator NOME]")
        from lecture_rag.evaluate.terminal import annotate_in_terminal

        runs.require(args[0])
        who = annotator or typer.prompt("Seu nome (anotador)")
        annotate_in_terminal(runs, args[0], who, console)


@app.command()
@user_errors
def agreement(
    run: Annotated[str, typer.Argument(help="Nome da rodada.")],
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Saída em JSON.")] = False,
) -> None:
    """Concordância entre anotação manual e automatizada, e entre anotadores."""
    from lecture_rag.evaluate.runs import RunStore
    from lecture_rag.evaluate.summary import run_summary

    with Store(_settings(store).home, create=False) as st:
        runs = RunStore(st)
        summary = run_summary(runs.items(run), runs.scheme(run))
    if as_json:
        sys.stdout.write(json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
        return
    _print_summary(run, summary)


def _fmt(value: Any, digits: int = 3) -> str:
    return "n/d" if value is None else f"{value:.{digits}f}"


def _print_summary(run: str, s: dict[str, Any]) -> None:
    console.print(f"[bold]Rodada {run}[/]: {s['questions']} perguntas, {s['annotated']} com anotação manual")
    console.print(f"Respostas: {s['answers']}", highlight=False)
    for kind, j in s["judges"].items():
        if not j["judged"]:
            console.print(f"Juiz {kind}: não pedido nesta rodada (--judges)", highlight=False)
            continue
        console.print(
            f"Juiz {kind}: média {_fmt(j['mean'], 2)} em {j['n_scored']}, não interpretadas {j['unparsed']}"
            + (f" ({'; '.join(j['errors'])})" if j["errors"] else ""),
            highlight=False,
        )
    if s.get("retrieval"):
        r = s["retrieval"]
        console.print(
            f"Recuperação ({r['n']}): R@1 {_fmt(r['recall@1'])}, R@5 {_fmt(r['recall@5'])}, "
            f"R@10 {_fmt(r['recall@10'])}, MRR@10 {_fmt(r['mrr@10'])}, nDCG@10 {_fmt(r['ndcg@10'])}"
        )
    a = s.get("agreement")
    if not a:
        console.print(f"[yellow]{s.get('agreement_note')}[/]")
    else:
        ci = a.get("kappa_ci95")
        console.print(
            f"Manual × automatizada: {a['n']} pares, acurácia {_fmt(a['accuracy'])}, κ {_fmt(a['kappa'])}"
            + (f" (IC95% {_fmt(ci[0])}–{_fmt(ci[1])})" if ci else "")
            + f", κ ponderado linear {_fmt(a['weighted']['linear'])}"
        )
        table = Table(title="Matriz de confusão (linhas: manual, colunas: automatizada)")
        table.add_column("")
        for label in a["labels"]:
            table.add_column(label, justify="right")
        for label, row in zip(a["labels"], a["confusion"], strict=True):
            table.add_row(label, *(str(v) for v in row))
        console.print(table)
        for note in a.get("notes", []):
            console.print(f"[dim]{note}[/]")
    if s.get("inter_annotator"):
        ia = s["inter_annotator"]
        console.print(f"Entre anotadores: κ médio {_fmt(ia['mean_pairwise_kappa'])}, Fleiss {_fmt(ia['fleiss_kappa'])}")
    for label, dist in s.get("ar_by_manual_label", {}).items():
        console.print(
            f"AR com rótulo manual {label}: n={dist['n']}, média {_fmt(dist['mean'], 2)}, "
            f"histograma {dist['histogram']}",
            highlight=False,
        )


@app.command()
@user_errors
def report(
    run: Annotated[str, typer.Argument(help="Nome da rodada.")],
    store: StoreOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="markdown, csv, json ou html.")] = "markdown",
    hide_urls: Annotated[bool, typer.Option("--hide-urls", help="Ocultar URLs.")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Arquivo de saída.")] = None,
) -> None:
    """Relatório da rodada: registros no formato-semente (markdown), CSV, JSON ou página HTML."""
    from lecture_rag.evaluate.labels import scheme_of_run
    from lecture_rag.evaluate.runs import RunStore
    from lecture_rag.evaluate.summary import run_summary
    from lecture_rag.report import run_report

    if fmt not in {"markdown", "csv", "json", "html"}:
        raise LectureRagError(f"Formato desconhecido: {fmt!r}. Use markdown, csv, json ou html.")
    with Store(_settings(store).home, create=False) as st:
        runs = RunStore(st)
        config = runs.require(run)
        items = runs.items(run)
    if fmt == "markdown":
        text = run_report.markdown_report(items, hide=hide_urls)
    elif fmt == "csv":
        text = run_report.csv_report(items, hide=hide_urls)
    else:
        summary = run_summary(items, scheme_of_run(config))
        render = run_report.json_report if fmt == "json" else run_report.html_report
        text = render(run, config, items, summary, hide=hide_urls)
    if output:
        output.write_text(text, encoding="utf-8")
        console.print(f"Relatório gravado em {output}")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


@app.command()
@user_errors
def compare(
    run_a: Annotated[str, typer.Argument(help="Rodada A.")],
    run_b: Annotated[str, typer.Argument(help="Rodada B.")],
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Saída em JSON.")] = False,
) -> None:
    """Comparar duas rodadas: métricas lado a lado e perguntas que mudaram de rótulo."""
    from lecture_rag.evaluate.compare import compare_runs
    from lecture_rag.evaluate.runs import RunStore

    with Store(_settings(store).home, create=False) as st:
        runs = RunStore(st)
        result = compare_runs(runs.items(run_a), runs.items(run_b), runs.scheme(run_a), runs.scheme(run_b))
    if as_json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
        return
    table = Table(title=f"{run_a} × {run_b}")
    for col in ("métrica", run_a, run_b, "diferença"):
        table.add_column(col, justify="right")
    for m in result["metrics"]:
        delta = None if m["a"] is None or m["b"] is None else m["b"] - m["a"]
        table.add_row(m["name"], _fmt(m["a"]), _fmt(m["b"]), "n/d" if delta is None else f"{delta:+.3f}")
    console.print(table)
    flips = result["flips"]
    console.print(f"{len(flips)} pergunta(s) mudaram de rótulo:" if flips else "Nenhuma pergunta mudou de rótulo.")
    for f in flips:
        console.print(
            f"- {f['qid']} ({f['which']}): {f['a'] or '-'} → {f['b'] or '-'}  {f['question'][:80]}", highlight=False
        )


@app.command()
@user_errors
def serve(
    store: StoreOpt = None,
    host: Annotated[str, typer.Option(help="Endereço (padrão: só esta máquina).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    token: Annotated[str | None, typer.Option(help="Token para anotar (padrão: gerado e mostrado uma vez).")] = None,
) -> None:
    """Abrir a página web: perguntar, assistir no segundo citado e anotar."""
    from lecture_rag.web.app import serve as run_server

    run_server(_settings(store), host=host, port=port, token=token)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
