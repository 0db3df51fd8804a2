#!/usr/bin/env python3
"""Write the CLI reference (docs/reference/cli.md) from the Typer app itself, so it cannot drift from the code.

Usage: ``python scripts/cli_reference.py [OUT]`` (default ``docs/reference/cli.md``; ``make docs``
runs it). ``--check`` writes nothing and exits 1 when the file on disk differs from what the app
says now (CI and ``tests/unit/test_docs.py`` use it). The walk goes through the click objects
Typer builds (``typer.main.get_command``): every command and group, in the app's order, with its
help, arguments and options. Typer ships its own copy of click, so the objects are read by what
they have (``commands``, ``param_type_name``), not by ``isinstance`` against the click package.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from lecture_rag.cli import app

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "docs" / "reference" / "cli.md"
HEADER = """# CLI reference

Generated from the command-line app by `scripts/cli_reference.py` (`make docs`); do not edit by hand.
Every command also answers `--help` in the terminal.
"""


def _text(text: str | None) -> str:
    """Help text as markdown: one paragraph per blank-line block, angle brackets escaped."""
    blocks = [" ".join(block.split()) for block in (text or "").strip().split("\n\n")]
    return "\n\n".join(b.replace("\\[", "[").replace("<", "&lt;").replace(">", "&gt;") for b in blocks if b)


def _default(param: Any) -> str:
    """The default as a person types it, or '' when there is none worth showing."""
    default = param.default
    if default is None or default == () or default == [] or callable(default):
        return ""
    if getattr(param, "is_flag", False) or isinstance(default, bool):
        return ""
    return f" (padrão: `{default}`)"


def _param(param: Any) -> str:
    """One bullet per argument or option: how it is written, its help, its default."""
    if param.param_type_name == "argument":
        name = (param.metavar or param.name or "").upper()
        required = "obrigatório" if param.required else "opcional"
        return f"- `{name}` ({required})"
    spelled = " / ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
    choices = ""
    known = getattr(getattr(param, "type", None), "choices", None)
    if known:
        choices = " — um de: " + ", ".join(f"`{c}`" for c in known)
    help_text = _text(param.help)
    return f"- {spelled}{': ' + help_text if help_text else ''}{choices}{_default(param)}"


def _section(path: list[str], command: Any) -> list[str]:
    """The markdown of ``command`` and, for a group, of each subcommand after it."""
    lines = [f"{'#' * min(len(path) + 1, 4)} `{' '.join(path)}`", ""]
    help_text = _text(command.help)
    if help_text:
        lines += [help_text, ""]
    ctx = typer.Context(command, info_name=path[-1])
    usage = " ".join(command.collect_usage_pieces(ctx))
    lines += ["```text", f"{' '.join(path)} {usage}".rstrip(), "```", ""]
    params = [p for p in command.params if not getattr(p, "hidden", False) and p.name != "help"]
    lines += [_param(p) for p in params if p.param_type_name == "argument"]
    lines += [_param(p) for p in params if p.param_type_name == "option"]
    if params:
        lines.append("")
    if hasattr(command, "commands"):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                lines += _section([*path, name], sub)
    return lines


def render() -> str:
    """The whole reference page for the app as it is now."""
    root = typer.main.get_command(app)
    return HEADER + "\n" + "\n".join(_section(["lecture-rag"], root)).rstrip() + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    rest = [a for a in argv if a != "--check"]
    out = Path(rest[0]) if rest else DEFAULT_OUT
    text = render()
    if check:
        current = out.read_text(encoding="utf-8") if out.exists() else ""
        if current != text:
            print(f"{out} está desatualizado: rode 'make docs' (ou python scripts/cli_reference.py).", file=sys.stderr)
            return 1
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"{out}: {text.count(chr(10))} linhas")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
