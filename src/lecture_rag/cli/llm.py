"""``llm check``: which answer LLM is configured, whether it answers, how fast, and what to do if not."""

from __future__ import annotations

import typer
from rich.markup import escape

from lecture_rag.cli.common import (
    JsonOpt,
    LLMOpt,
    StoreOpt,
    Waiting,
    answer_settings,
    console,
    print_json,
    settings_for,
    user_errors,
)
from lecture_rag.errors import LLMError
from lecture_rag.llm import LLM, make_llm
from lecture_rag.llm.check import LLMCheck, check_llm


@user_errors
def llm_check(store: StoreOpt = None, llm: LLMOpt = None, as_json: JsonOpt = False) -> None:
    """Verificar o LLM das respostas: qual está configurado, se responde, tempo até o 1º token."""
    cfg = answer_settings(settings_for(store), llm).llm
    model: LLM | None = None
    error = ""
    try:
        model = make_llm(cfg)
    except LLMError as exc:
        error = str(exc)
    try:
        with Waiting("testando o LLM com uma geração curta…"):
            result = check_llm(cfg, model, error=error)
    finally:
        if model is not None:
            model.close()
    if as_json:
        print_json(result)
    else:
        _print(result)
    if result.configured and not result.answers:
        raise typer.Exit(1)


def _print(result: LLMCheck) -> None:
    console.print(f"[bold]Backend configurado:[/] {escape(result.backend)}", highlight=False)
    if result.model:
        console.print(f"[bold]Modelo:[/] {escape(result.model)}", highlight=False)
    if result.answers:
        console.print(
            f"[green]Responde[/]: 1º token em {result.first_token_s:.2f}s, total {result.total_s:.2f}s "
            f"(resposta: {escape(result.reply)!r})",
            highlight=False,
        )
    elif result.configured:
        console.print(f"[bold red]Não responde[/]: {escape(result.error or 'resposta vazia')}", highlight=False)
    for runner in result.detected:
        models = ", ".join(runner.models) or "nenhum modelo carregado"
        console.print(
            f"Servidor local detectado: {escape(runner.name)} em {escape(runner.base_url)} ({escape(models)})",
            highlight=False,
        )
    if not result.detected:
        console.print("Nenhum servidor local detectado nas portas usuais (11434, 8080, 1234, 8000).")
    if result.advice:
        console.print(f"[bold]O que fazer:[/] {escape(result.advice)}", highlight=False)
