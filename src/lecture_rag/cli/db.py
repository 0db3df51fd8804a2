"""``lecture-rag db``: the store's database itself (schema upgrades, where it is and what it holds)."""

from __future__ import annotations

from rich.markup import escape

from lecture_rag.cli.common import JsonOpt, StoreOpt, console, print_json, settings_for, user_errors
from lecture_rag.store import store_status, upgrade_store


@user_errors
def db_upgrade(store: StoreOpt = None) -> None:
    """Atualizar o esquema do banco (SQLite ou PostgreSQL) para esta versão; o único passo que altera um banco
    compartilhado."""
    before, after = upgrade_store(settings_for(store))
    if before == after:
        console.print(f"O banco já está no esquema {after}: nada a fazer.", highlight=False)
    elif before == 0:
        console.print(f"Banco criado no esquema {after}.", highlight=False)
    else:
        console.print(f"Esquema atualizado: {before} → {after}.", highlight=False)


@user_errors
def db_status(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Mostrar onde está o banco do acervo, seu esquema e quanto ele guarda."""
    status = store_status(settings_for(store))
    if as_json:
        print_json(status)
        return
    backend = "PostgreSQL" if status.backend == "postgresql" else "SQLite"
    console.print(f"Banco: {backend} em {escape(status.where)}", highlight=False)
    console.print(f"Esquema: {status.schema} (esta versão: {status.code_schema})", highlight=False)
    console.print(
        f"Aulas: {status.videos} · segmentos: {status.segments} · rodadas: {status.runs} · "
        f"versão do acervo: {status.corpus_version}",
        highlight=False,
    )
