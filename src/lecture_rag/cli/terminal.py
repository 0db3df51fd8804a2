"""Terminal annotation: one record at a time, a key press per label.

The automated label is never shown here, so the person is not anchored by it.
Without a terminal (piped input) one line is read per record, which keeps the
mode scriptable and testable.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

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
#: The evidence is shortened here (the web page has it whole): a few segments, the start of each.
EVIDENCE_HITS = 3
EVIDENCE_CHARS = 160
#: Typed at the comment prompt, erases the comment (Enter alone keeps it).
CLEAR_COMMENT = "-"


def _key() -> str:
    if sys.stdin.isatty():
        return typer.getchar().lower()
    line = sys.stdin.readline()
    if not line:
        return "q"
    return line.strip().lower()[:1] or "s"


def _ask_comment(current: str) -> str:
    """The comment for the record: Enter keeps ``current``, ``-`` erases it, anything else replaces it."""
    if sys.stdin.isatty():
        typed = typer.prompt(
            f"Observação (Enter mantém, '{CLEAR_COMMENT}' apaga)", default=current, show_default=bool(current)
        )
    else:
        typed = sys.stdin.readline().strip() or current
    typed = typed.strip()
    return "" if typed == CLEAR_COMMENT else typed


def _show_evidence(console: Console, item: RunItem) -> None:
    """The retrieved segments, shortened: they back the judgement but are not what is judged."""
    hits = item.answer.hits
    console.print(
        f"[bold]Evidência[/] [dim]({len(hits)} segmento(s) recuperado(s); "
        f"os {min(len(hits), EVIDENCE_HITS)} primeiros, resumidos)[/]",
        highlight=False,
    )
    for h in hits[:EVIDENCE_HITS]:
        text = h.text if len(h.text) <= EVIDENCE_CHARS else h.text[:EVIDENCE_CHARS] + "…"
        console.print(
            f"[dim]\\[{h.rank}] {hhmmss(h.start)}–{hhmmss(h.end)} {escape(h.title)}: {escape(text)}[/]", highlight=False
        )


def _show(console: Console, item: RunItem, view: _View, scheme: LabelScheme) -> None:
    """One record in the order of the task: question, the answer judged, the reference answer, the evidence."""
    a = item.answer
    console.rule(f"{view.index + 1}/{view.total} · anotadas por você: {view.done}")
    console.print(f"[bold]Pergunta:[/] {escape(item.question)}", highlight=False)
    console.print(Panel(escape(a.text or "(sem resposta)"), title="Resposta em avaliação"), highlight=False)
    refs = "; ".join(f"{r.title} " + ", ".join(hhmmss(t.start) for t in r.times) for r in a.references)
    console.print(f"[bold]Referências da resposta:[/] {escape(refs or 'nenhuma')}", highlight=False)
    if item.meta.answer:
        console.print(
            Panel(escape(item.meta.answer), title="Resposta de referência (do arquivo de perguntas)"), highlight=False
        )
    else:
        console.print("[dim]Sem resposta de referência no arquivo de perguntas.[/]", highlight=False)
    _show_evidence(console, item)
    ar = item.judgments.get("answer_relevance")
    if ar is not None and ar.score is not None:
        console.print(f"[bold]Answer Relevance:[/] {ar.score:.2f} — {escape(ar.reasoning[:300])}", highlight=False)
    if view.own is not None:
        console.print(f"[bold]Seu rótulo: {escape(view.own.label)}[/]", highlight=False)
    if view.comment:
        console.print(f"[bold]Observação:[/] {escape(view.comment)}", highlight=False)
    keyed = scheme.keyed()
    for key, d in keyed:
        console.print(f"  [bold]{escape(key)}[/] {escape(f'{d.code} {d.name}: {d.guide_text}')}", highlight=False)
    console.print(f"[dim]{escape(HELP.format(keys='/'.join(key for key, _ in keyed)))}[/]", highlight=False)


@dataclass(frozen=True, slots=True)
class _View:
    """Where the person is and what they have entered for the record on screen."""

    index: int
    total: int
    done: int
    own: Annotation | None
    comment: str


def annotate_in_terminal(runs: RunStore, run: str, annotator: str, console: Console) -> int:
    """Label the run's items, starting at the first this annotator has not labelled.

    A record already labelled shows its label and comment (after ``b`` too);
    labelling it again keeps the comment unless the person changes it with ``o``.
    """
    items = runs.items(run)
    scheme = scheme_of_run(runs.require(run))
    codes = scheme.keys()
    index = next((i for i, it in enumerate(items) if annotator not in it.annotations), len(items))
    labelled = 0
    comment = ""
    shown = -1
    while 0 <= index < len(items):
        item = items[index]
        own = item.annotations.get(annotator)
        if index != shown:  # a record reached anew starts from its stored comment
            comment, shown = (own.comment if own else ""), index
        done = sum(1 for it in items if annotator in it.annotations)
        _show(console, item, _View(index, len(items), done, own, comment), scheme)
        key = _key()
        if key == "q":
            break
        if key == "o":
            comment = _ask_comment(comment)
            continue
        if key in codes:
            runs.annotate(run, item.qid, annotator, codes[key], comment)
            item.annotations[annotator] = Annotation(codes[key], comment)
            labelled += 1
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
