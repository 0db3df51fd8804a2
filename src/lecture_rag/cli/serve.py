"""``serve``: the web page to ask, watch at the cited second and annotate."""

from __future__ import annotations

from typing import Annotated

import typer

from lecture_rag.cli.common import StoreOpt, settings_for, user_errors


@user_errors
def serve(
    store: StoreOpt = None,
    host: Annotated[str, typer.Option(help="Endereço (padrão: só esta máquina).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    token: Annotated[str | None, typer.Option(help="Token para anotar (padrão: gerado e mostrado uma vez).")] = None,
) -> None:
    """Abrir a página web: perguntar, assistir no segundo citado e anotar."""
    # The web stack (FastAPI, Starlette, uvicorn) is imported when the server starts, not by every command.
    from lecture_rag.web.app import serve as run_server

    run_server(settings_for(store), host=host, port=port, token=token)
