"""``serve``: the web page to ask, watch at the cited second and annotate."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from lecture_rag.cli.common import RerankOpt, StoreOpt, settings_for, user_errors, with_flags
from lecture_rag.config import TOKEN_ENV
from lecture_rag.errors import ConfigError
from lecture_rag.userfiles import require_regular_file


def server_token(token: str | None, token_file: Path | None) -> str | None:
    """The token from ``--token``, else ``--token-file``, else ``LECTURE_RAG_TOKEN``; None: generate one.

    A file or the environment keeps the token out of the process list
    (``ps`` shows every command-line argument to every user).
    """
    if token is not None:
        given = token.strip()
        where = "--token"
    elif token_file is not None:
        require_regular_file(token_file.expanduser(), "--token-file: o token, numa linha")
        try:
            given = token_file.expanduser().read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"Não consegui ler o token de {token_file}: {exc}. Confira o caminho de --token-file."
            ) from None
        where = f"--token-file {token_file}"
    elif os.environ.get(TOKEN_ENV) is not None:
        given = os.environ[TOKEN_ENV].strip()
        where = TOKEN_ENV
    else:
        return None
    if not given or any(ch.isspace() or ord(ch) < 32 for ch in given):
        raise ConfigError(f"O token de {where} está vazio ou tem espaços: use uma linha só, sem espaços.")
    from lecture_rag.web.security import check_token_strength  # the web stack loads only for serve

    check_token_strength(given, where)
    return given


@user_errors
def serve(
    store: StoreOpt = None,
    host: Annotated[str, typer.Option(help="Endereço (padrão: só esta máquina).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    token: Annotated[
        str | None,
        typer.Option(help=f"Token para anotar (visível no 'ps': prefira --token-file ou {TOKEN_ENV})."),
    ] = None,
    token_file: Annotated[
        Path | None, typer.Option("--token-file", help=f"Arquivo com o token (padrão: {TOKEN_ENV}, ou gerado).")
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="Nome ou endereço pelo qual a rede acessa o servidor (repetível; exigido com --host fora desta "
            "máquina). Padrão: [web] allowed_hosts.",
        ),
    ] = None,
    header_timeout: Annotated[
        float | None, typer.Option(min=0.1, max=600, help="Segundos para o cliente enviar o cabeçalho do pedido.")
    ] = None,
    keep_alive_timeout: Annotated[
        int | None, typer.Option(min=1, max=600, help="Segundos que uma conexão ociosa fica aberta.")
    ] = None,
    max_connections: Annotated[int | None, typer.Option(min=8, help="Conexões abertas ao mesmo tempo.")] = None,
    answer_workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="Perguntas respondidas ao mesmo tempo.")
    ] = None,
    ask_queue: Annotated[
        int | None, typer.Option(min=0, help="Perguntas à espera; além delas, 503 com Retry-After.")
    ] = None,
    rerank: RerankOpt = None,
) -> None:
    """Abrir a página web: perguntar, assistir no segundo citado e anotar."""
    # The web stack (FastAPI, Starlette, uvicorn) is imported when the server starts, not by every command.
    from lecture_rag.web.app import serve as run_server

    settings = settings_for(store, rerank=rerank)
    flags = {
        "web.allowed_hosts": allowed_host or None,
        "web.header_timeout": header_timeout,
        "web.keep_alive_timeout": keep_alive_timeout,
        "web.max_connections": max_connections,
        "web.answer_workers": answer_workers,
        "web.ask_queue": ask_queue,
    }
    settings = with_flags(settings, flags)
    run_server(settings, host=host, port=port, token=server_token(token, token_file))
