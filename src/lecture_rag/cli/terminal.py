"""Terminal annotation: one record at a time, a key press per label.

The automated label is never shown here, so the person is not anchored by it.
Without a terminal (piped input) one line is read per record, which keeps the
mode scriptable and testable.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from lecture_rag.evaluate.labels import LabelScheme, scheme_of_run
from lecture_rag.evaluate.summary import auto_label
from lecture_rag.links import hhmmss
from lecture_rag.records import Annotation, RunItem
from lecture_rag.store import RunStore

HELP = "{keys} = rótulo · o = observação · s = pular · b = voltar · q = sair"


def _key() -> str:
    if sys.stdin.isatty():
        return typer.getchar().lower()
    line = sys.stdin.readline()
    if not line:
        return "q"
    return line.strip().lower()[:1] or "s"


def _show(console: Console, item: RunItem, index: int, total: int, done: int, scheme: LabelScheme) -> None:
    a = item.answer
    console.rule(f"{index + 1}/{total} · anotadas por você: {done}")
    console.print(f"[bold]Pergunta:[/] {escape(item.question)}", highlight=False)
    for h in a.hits[:5]:
        console.print(
            f"[cyan]\\[{h.rank}] {hhmmss(h.start)}–{hhmmss(h.end)} {escape(h.title)}[/] {escape(h.text[:240])}…",
            highlight=False,
        )
    console.print(Panel(escape(a.text or "(sem resposta)"), title="Resposta gerada"), highlight=False)
    refs = "; ".join(f"{r.title} " + ", ".join(hhmmss(t.start) for t in r.times) for r in a.references)
    console.print(f"[bold]Referências:[/] {escape(refs or 'nenhuma')}", highlight=False)
    ar = item.judgments.get("answer_relevance")
    if ar is not None and ar.score is not None:
        console.print(f"[bold]Answer Relevance:[/] {ar.score:.2f} — {escape(ar.reasoning[:300])}", highlight=False)
    keyed = scheme.keyed()
    for key, d in keyed:
        console.print(f"  [bold]{escape(key)}[/] {escape(f'{d.code} {d.name}: {d.guide_text}')}", highlight=False)
    console.print(f"[dim]{escape(HELP.format(keys='/'.join(key for key, _ in keyed)))}[/]", highlight=False)


def annotate_in_terminal(runs: RunStore, run: str, annotator: str, console: Console) -> int:
    """Label the run's items, starting at the first this annotator has not labelled."""
    items = runs.items(run)
    scheme = scheme_of_run(runs.require(run))
    codes = scheme.keys()
    index = next((i for i, it in enumerate(items) if annotator not in it.annotations), len(items))
    labelled = 0
    comment = ""
    while 0 <= index < len(items):
        item = items[index]
        done = sum(1 for it in items if annotator in it.annotations)
        _show(console, item, index, len(items), done, scheme)
        key = _key()
        if key == "q":
            break
        if key == "o":
            comment = (
                typer.prompt("Observação", default="", show_default=False)
                if sys.stdin.isatty()
                else sys.stdin.readline().strip()
            )
            continue
        if key in codes:
            runs.annotate(run, item.qid, annotator, codes[key], comment)
            item.annotations[annotator] = Annotation(codes[key], comment)
            labelled += 1
            comment = ""
            auto = auto_label(item)
            saved = f"Gravado: {codes[key]}" + (f" (anotação automatizada: {auto})" if auto else "")
            console.print(saved, markup=False, highlight=False)
            index += 1
        elif key == "b":
            index = max(0, index - 1)
        elif key == "s":
            index += 1
        else:
            keys = "/".join(codes)
            console.print(
                f"[yellow]Tecla desconhecida {escape(repr(key))}: nada foi gravado. Use {escape(keys)} para rotular, "
                "s para pular, b para voltar, o para uma observação ou q para sair.[/]",
                highlight=False,
            )
    console.print(f"{labelled} rótulo(s) gravado(s) por {annotator}.", markup=False, highlight=False)
    return labelled
