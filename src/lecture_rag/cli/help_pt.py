"""Typer's own words in the help, in Portuguese, like the rest of the CLI.

Why: a course team reads ``--help`` in Portuguese and met ``<bool>``, ``<list[str]>`` and
"Show this message and exit." among our texts. Typer keeps these as module constants and
methods (no translation catalogue), so they are set here once, when the app is built.
"""

from __future__ import annotations

from typing import Any

from typer import core, rich_utils
from typer._click import core as click_core
from typer._click import formatting

HELP_TEXT = "Mostrar esta ajuda e sair."

#: Typer's type labels → Portuguese metavars (a flag shows none: it takes no value).
_TYPES = {
    "str": "TEXTO",
    "int": "INTEIRO",
    "float": "NÚMERO",
    "path": "CAMINHO",
    "file": "ARQUIVO",
    "directory": "PASTA",
    "int range": "INTEIRO",
    "float range": "NÚMERO",
    "list[str]": "TEXTO...",
    "list[path]": "CAMINHO...",
}


def _display_type(param: Any, ctx: Any) -> str | None:
    """A Portuguese metavar for ``param``: choices as they are, types in words, none for flags."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None
    if param.metavar is not None:
        return str(param.metavar)
    label = str(core._TyperParameter.display_type(param, ctx)).strip("<>")
    return _TYPES.get(label, label)


def _help_option(original: Any) -> Any:
    def get_help_option(self: Any, ctx: Any) -> Any:
        option = original(self, ctx)
        if option is not None:
            option.help = HELP_TEXT
        return option

    return get_help_option


def _usage(original: Any) -> Any:
    def write_usage(self: Any, prog: str, args: str = "", prefix: str | None = None) -> None:
        original(self, prog, args, "Uso: " if prefix is None else prefix)

    return write_usage


def install() -> None:
    """Put typer's help words in Portuguese (idempotent)."""
    rich_utils.DEFAULT_STRING = "[padrão: {}]"
    rich_utils.ENVVAR_STRING = "[variável: {}]"
    rich_utils.REQUIRED_LONG_STRING = "[obrigatório]"
    rich_utils.DEPRECATED_STRING = "(obsoleto) "
    rich_utils.ARGUMENTS_PANEL_TITLE = "Argumentos"
    rich_utils.OPTIONS_PANEL_TITLE = "Opções"
    rich_utils.COMMANDS_PANEL_TITLE = "Comandos"
    rich_utils.ERRORS_PANEL_TITLE = "Erro"
    rich_utils.ABORTED_TEXT = "Cancelado."
    rich_utils.RICH_HELP = "Veja [blue]'{command_path} {help_option}'[/] para ajuda."
    for cls in (core.TyperOption, core.TyperArgument):
        cls.display_type_rich = _display_type  # type: ignore[method-assign,assignment]
    if not getattr(click_core.Command.get_help_option, "_pt", False):
        patched = _help_option(click_core.Command.get_help_option)
        patched._pt = True
        click_core.Command.get_help_option = patched  # type: ignore[method-assign]
        formatting.HelpFormatter.write_usage = _usage(formatting.HelpFormatter.write_usage)  # type: ignore[method-assign]
