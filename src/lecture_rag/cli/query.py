"""Query commands: ``search`` (the retrieved segments) and ``ask`` (a grounded, cited answer)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape

from lecture_rag.cli.common import (
    AskFormat,
    JsonOpt,
    KOpt,
    LLMOpt,
    ModeOpt,
    RerankOpt,
    StoreOpt,
    Waiting,
    answer_llm,
    console,
    err_console,
    open_retriever,
    print_json,
    retrieval_choice,
    settings_for,
    user_errors,
)
from lecture_rag.config import env_var
from lecture_rag.errors import LectureRagError
from lecture_rag.generate.answer import AnswerEngine
from lecture_rag.links import hhmmss
from lecture_rag.records import Answer
from lecture_rag.report.markdown import record_from_answer, render_record
from lecture_rag.retrieve import SearchRequest


@user_errors
def search(
    query: Annotated[str, typer.Argument(help="A pergunta.")],
    store: StoreOpt = None,
    k: KOpt = None,
    mode: ModeOpt = None,
    course: Annotated[str | None, typer.Option(help="Só esta disciplina.")] = None,
    video: Annotated[str | None, typer.Option(help="Só este vídeo.")] = None,
    rerank: RerankOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Buscar os segmentos mais próximos de uma pergunta."""
    settings = settings_for(store, rerank=rerank)
    k, mode = retrieval_choice(settings, k, mode)
    request = SearchRequest(query, k=k, mode=mode, course=course, video=video)
    hits = list(open_retriever(settings).search(request).hits)
    if as_json:
        print_json(hits)
        return
    if not hits:
        console.print("Nenhum segmento encontrado.")
    for h in hits:
        score = "-" if h.score is None else f"{h.score:.4f}"
        console.print(
            f"[bold]{h.rank}.[/] Corpus ID {h.corpus_id}  Score {score}  {h.inicio}–{h.fim}  "
            f"(citar em {hhmmss(h.cite_start)})  [cyan]{escape(h.title)}[/]\n"
            f"   {escape(h.cite_url or '(sem URL)')}\n   {escape(h.text[:400])}\n",
            highlight=False,
        )


@user_errors
def ask(
    question: Annotated[str, typer.Argument(help="A pergunta.")],
    store: StoreOpt = None,
    k: KOpt = None,
    mode: ModeOpt = None,
    llm: LLMOpt = None,
    fmt: Annotated[AskFormat, typer.Option("--format", help="text, markdown ou json.")] = AskFormat.TEXT,
    hide_urls: Annotated[bool, typer.Option("--hide-urls", help="Ocultar URLs (como no registro-semente).")] = False,
    number: Annotated[int, typer.Option("--number", help="Número da pergunta no registro markdown.")] = 1,
    course: Annotated[str | None, typer.Option(help="Só esta disciplina.")] = None,
    video: Annotated[str | None, typer.Option(help="Só este vídeo.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Tempo até o 1º token e tokens/s.")] = False,
    rerank: RerankOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Saída em JSON (o mesmo que --format json).")] = False,
) -> None:
    """Responder a uma pergunta com base nas aulas, citando os trechos."""
    if as_json and fmt not in (AskFormat.TEXT, AskFormat.JSON):
        raise LectureRagError(f"--json e --format {fmt} pedem saídas diferentes: escolha uma.")
    fmt = AskFormat.JSON if as_json else fmt
    settings = settings_for(store, rerank=rerank)
    k, mode = retrieval_choice(settings, k, mode)
    engine = AnswerEngine(open_retriever(settings), answer_llm(settings, llm), settings.llm)
    streaming = fmt == AskFormat.TEXT
    if streaming:
        console.print("[bold]Resposta:[/] ", end="")

    def on_token(text: str) -> None:
        spinner.stop()
        console.out(text, end="", highlight=False)

    with Waiting("buscando nas aulas e esperando o LLM…") as spinner:
        answer = engine.answer(
            question, k=k, mode=mode, course=course, video=video, on_token=on_token if streaming else None
        )
    if fmt == AskFormat.JSON:
        print_json(answer, hide_urls=hide_urls)
    elif fmt == AskFormat.MARKDOWN:
        sys.stdout.write(render_record(record_from_answer(answer, number), hide_urls=hide_urls))
    else:
        _print_answer_text(answer, hide_urls, verbose)
    if answer.error:
        err_console.print(f"[bold red]Erro do LLM:[/] {escape(answer.error)}", highlight=False)
        if answer.fallback and fmt == AskFormat.TEXT:
            err_console.print("Resposta extrativa, no lugar da do LLM:", highlight=False)
            err_console.print(answer.fallback, markup=False, highlight=False)
        raise typer.Exit(1)


def _print_answer_text(answer: Answer, hide_urls: bool, verbose: bool) -> None:
    if answer.extractive or not answer.model:
        console.print(answer.text, markup=False, highlight=False)
        console.print(
            f"[dim]Para respostas redigidas, configure um LLM: {env_var('llm', 'backend')}=openai com "
            f"{env_var('llm', 'base_url')}/{env_var('llm', 'model')} (Ollama, vLLM, llama.cpp...), "
            "ou --llm gguf:/caminho/modelo.gguf.[/]"
        )
    else:
        console.print()
    if answer.no_citations:
        console.print("[yellow]Aviso: a resposta não cita nenhum trecho; confira nas fontes abaixo.[/]")
    if answer.invalid_citations:
        ignored = escape(str(answer.invalid_citations))
        console.print(f"[yellow]Aviso: citações sem trecho correspondente ignoradas: {ignored}[/]")
    if answer.off_language:
        console.print("[yellow]Aviso: a resposta não está no idioma da pergunta.[/]")
    if answer.fallback and not answer.error:
        console.print("\n[bold]Resposta extrativa, para comparar:[/]")
        console.print(answer.fallback, markup=False, highlight=False)
    console.print("\n[bold]Referências:[/]")
    for ref in answer.references:
        times = ", ".join(
            f"[{t.n}] {hhmmss(t.start)}" + ("" if hide_urls or not t.url else f" {t.url}") for t in ref.times
        )
        console.print(f"- {ref.title} ({ref.video_id}): {times}", markup=False, highlight=False)
    if not answer.references:
        console.print("- (nenhuma)")
    console.print("\n[bold]Segmentos recuperados:[/]")
    for h in answer.hits:
        url = "oculto" if hide_urls else (h.url or "sem URL")
        score = "-" if h.score is None else f"{h.score:.4f}"
        console.print(
            f"{h.rank}. [{h.inicio}–{h.fim}] {h.title} (Corpus ID {h.corpus_id}, score {score}) {url}",
            markup=False,
            highlight=False,
        )
    timing = answer.timing
    if verbose and timing.first_token_s is not None:
        rate = timing.completion_tokens / max(1e-9, (timing.total_s or 0) - timing.first_token_s)
        console.print(
            f"[dim]modelo {escape(answer.model)}: 1º token em {timing.first_token_s:.2f}s, "
            f"{timing.completion_tokens} tokens em {timing.total_s or 0:.2f}s ({rate:.1f} tokens/s), "
            f"prompt {timing.prompt_tokens} tokens, {len(answer.context)} trechos no contexto[/]"
        )
