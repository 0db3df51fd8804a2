"""Typer's and click's own words (help and usage errors), in Portuguese, like the rest of the CLI.

Why: a course team reads ``--help`` in Portuguese and met ``<bool>``, ``<list[str]>`` and
"Show this message and exit." among our texts, and "No such command", "Missing argument"
when it mistyped one. Typer keeps these as module constants, methods and f-strings (no
translation catalogue), so they are set here once, when the app is built: the constants
replaced, the usage errors' messages translated where they are formatted (:func:`translated`).
"""

from __future__ import annotations

import re
from typing import Any

from typer import core, rich_utils
from typer._click import core as click_core
from typer._click import exceptions, formatting

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


#: Click's usage metavars → Portuguese (the usage line of the help, of a usage error and of the CLI reference).
_METAVARS = {"[OPTIONS]": "[OPÇÕES]", "COMMAND [ARGS]...": "COMANDO [ARGS]..."}


def _usage_pieces(original: Any) -> Any:
    def collect_usage_pieces(self: Any, ctx: Any) -> list[str]:
        return [_METAVARS.get(piece, piece) for piece in original(self, ctx)]

    collect_usage_pieces._pt = True  # type: ignore[attr-defined]
    return collect_usage_pieces


#: Click's and typer's usage errors (and the pydantic messages typer passes on for a bad value), English
#: pattern → Portuguese; applied in order to the whole formatted message, so a part each may match.
_ERRORS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), words)
    for pattern, words in (
        (r"^No such command '(.*)'\.", r"Não existe o comando '\1'."),
        (r"^Missing command\.", "Falta o comando."),
        (r"Did you mean (.*)\?$", r"Você quis dizer \1?"),
        (r"^No such option: (\S+)", r"A opção \1 não existe"),
        (r"\(Possible options: (.*)\)$", r"(opções parecidas: \1)"),
        (r"^Missing argument", "Falta o argumento"),
        (r"^Missing option", "Falta a opção"),
        (r"^Missing parameter", "Falta o parâmetro"),
        (r"^Got unexpected extra argument(?:s|\(s\))? \((.*)\)$", r"Argumento(s) a mais, não esperado(s): \1"),
        (r"^Invalid value for (.*?): ", r"Valor inválido para \1: "),
        (r"^Invalid value: ", "Valor inválido: "),
        (r"^Option '(.*)' requires an argument\.", r"A opção '\1' precisa de um valor."),
        (r"^Option '(.*)' requires (\d+) arguments\.", r"A opção '\1' precisa de \2 valores."),
        (r"^Option '(.*)' does not take a value\.", r"A opção '\1' não recebe valor."),
        (r"^Value must be an iterable\.", "O valor deve ser uma lista."),
        (r"Value '(.*)' is not a valid (.*)\.", r"'\1' não é um valor válido (\2)."),
        (r": Value error, ", ": "),
        (r"Input should be a valid number.*$", "esperava um número (ex.: 30 ou 2.5)."),
        (r"Input should be a valid integer.*$", "esperava um número inteiro (ex.: 5)."),
        (r"Input should be a valid boolean.*$", "esperava sim ou não (true/false)."),
        (r"Input should be greater than or equal to (\S+)$", r"deve ser no mínimo \1."),
        (r"Input should be greater than (\S+)$", r"deve ser maior que \1."),
        (r"Input should be less than or equal to (\S+)$", r"deve ser no máximo \1."),
        (r"Input should be less than (\S+)$", r"deve ser menor que \1."),
        (r"Input should be (.*) or (.*)$", r"deve ser \1 ou \2."),
        (r"'(.*)' is not one of (.*)\.$", r"'\1' não é um destes: \2."),
        (r"^(File|Directory|Path) '(.*)' does not exist\.", r"O caminho '\2' não existe."),
        (r" is a directory\.$", " é uma pasta, não um arquivo."),
        (r" is a file\.$", " é um arquivo, não uma pasta."),
        (r" is not readable\.$", " não pode ser lido."),
        (r" is not writable\.$", " não pode ser gravado."),
    )
)


def translated(message: str) -> str:
    """A click/typer usage error's message in Portuguese (one already in Portuguese passes unchanged)."""
    for pattern, words in _ERRORS:
        message = pattern.sub(words, message)
    return message


def _portuguese(original: Any) -> Any:
    def format_message(self: Any) -> str:
        return translated(original(self))

    format_message._pt = True  # type: ignore[attr-defined]
    return format_message


def _translate_errors() -> None:
    """The usage errors' ``format_message`` translated: :class:`UsageError`'s (inherited from typer's
    base exception, which our own errors do not use) and each subclass's own."""
    for cls in vars(exceptions).values():
        if not (isinstance(cls, type) and issubclass(cls, exceptions.UsageError)):
            continue
        own = cls.__dict__.get("format_message", cls.format_message if cls is exceptions.UsageError else None)
        if own is not None and not getattr(own, "_pt", False):
            cls.format_message = _portuguese(own)  # type: ignore[method-assign]


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
    _translate_errors()
    for group in (click_core.Command, core.TyperGroup):
        own = group.__dict__["collect_usage_pieces"]
        if not getattr(own, "_pt", False):
            group.collect_usage_pieces = _usage_pieces(own)  # type: ignore[method-assign]
    rich_utils.ABORTED_TEXT = "Cancelado."
    rich_utils.RICH_HELP = "Veja [blue]'{command_path} {help_option}'[/] para ajuda."
    for cls in (core.TyperOption, core.TyperArgument):
        cls.display_type_rich = _display_type  # type: ignore[method-assign,assignment]
    if not getattr(click_core.Command.get_help_option, "_pt", False):
        patched = _help_option(click_core.Command.get_help_option)
        patched._pt = True
        click_core.Command.get_help_option = patched  # type: ignore[method-assign]
        formatting.HelpFormatter.write_usage = _usage(formatting.HelpFormatter.write_usage)  # type: ignore[method-assign]
