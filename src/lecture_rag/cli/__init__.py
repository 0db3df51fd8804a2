"""The ``lecture-rag`` command line: one module per command group, registered here.

* :mod:`.corpus`: ``ingest``, ``index``, ``corpus list|show|edit|remove``
* :mod:`.query`: ``search``, ``ask``
* :mod:`.evaluation`: ``eval retrieval``, ``eval judges``, ``run``, ``runs``, ``annotate``, ``agreement``,
  ``report``, ``compare``
* :mod:`.serve`: ``serve``
* :mod:`.llm`: ``llm check``
* :mod:`.db`: ``db upgrade``, ``db status``
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from lecture_rag.cli import corpus, db, evaluation, help_pt, llm, query, serve

help_pt.install()

app = typer.Typer(
    name="lecture-rag",
    help="Perguntas e respostas sobre videoaulas, com citações no segundo certo.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
corpus_app = typer.Typer(help="Ver e gerenciar o acervo de aulas.", no_args_is_help=True)
eval_app = typer.Typer(help="Avaliar a recuperação e as respostas.", no_args_is_help=True)
llm_app = typer.Typer(help="O LLM das respostas.", no_args_is_help=True)
db_app = typer.Typer(help="O banco do acervo (SQLite ou PostgreSQL): esquema e estado.", no_args_is_help=True)


def _version() -> str:
    try:
        return version("lecture-rag")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
        return "desconhecida (não instalado)"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"lecture-rag {_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option("--version", help="Mostrar a versão e sair.", callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    """Perguntas e respostas sobre videoaulas, com citações no segundo certo."""


app.command()(corpus.ingest)
app.command()(corpus.index)
app.add_typer(corpus_app, name="corpus")
corpus_app.command("list")(corpus.corpus_list)
corpus_app.command("show")(corpus.corpus_show)
corpus_app.command("edit")(corpus.corpus_edit)
corpus_app.command("remove")(corpus.corpus_remove)

app.command()(query.search)
app.command()(query.ask)

app.add_typer(eval_app, name="eval")
eval_app.command("retrieval")(evaluation.eval_retrieval)
eval_app.command("judges")(evaluation.eval_judges)
app.command("run")(evaluation.run_questions)
app.command("runs")(evaluation.list_runs)
app.command()(evaluation.annotate)
app.command()(evaluation.agreement)
app.command()(evaluation.report)
app.command()(evaluation.compare)

app.command()(serve.serve)

app.add_typer(llm_app, name="llm")
llm_app.command("check")(llm.llm_check)

app.add_typer(db_app, name="db")
db_app.command("upgrade")(db.db_upgrade)
db_app.command("status")(db.db_status)


def main() -> None:  # pragma: no cover - console entry point
    app()


__all__ = ["app", "main"]
