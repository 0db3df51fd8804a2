"""Plots as inline SVG (matplotlib, headless), for the HTML report and the web pages."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lecture_rag.evaluate.agreement import ScoreSummary
from lecture_rag.evaluate.summary import GroupAgreement

LEVELS = ("0", "1/3", "2/3", "1")


def _pyplot() -> Any:
    """matplotlib, headless, imported on first plot: it costs half a second that other commands need not pay."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    _pyplot().close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def score_histograms(by_label: Mapping[str, ScoreSummary], title: str = "Answer Relevance por rótulo manual") -> str:
    """Grouped bars: how many answers got each AR level, per manual label."""
    fig, ax = _pyplot().subplots(figsize=(6, 3))
    labels = list(by_label)
    width = 0.8 / max(1, len(labels))
    for i, label in enumerate(labels):
        hist = by_label[label].histogram
        xs = [j + i * width for j in range(len(LEVELS))]
        ax.bar(xs, [hist.get(level, 0) for level in LEVELS], width=width, label=f"{label} (n={by_label[label].n})")
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(LEVELS))], LEVELS)
    ax.set_xlabel("nota AR (normalizada)")
    ax.set_ylabel("respostas")
    ax.set_title(title)
    if labels:
        ax.legend(fontsize=8)
    return _svg(fig)


def confusion_heatmap(matrix: Sequence[Sequence[int]], labels: Sequence[str]) -> str:
    """Manual (rows) vs automated (columns) labels, counts in the cells."""
    fig, ax = _pyplot().subplots(figsize=(3.6, 3.2))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("automatizada")
    ax.set_ylabel("manual")
    top = max((max(row) for row in matrix), default=0)
    for r, row in enumerate(matrix):
        for c, value in enumerate(row):
            ax.text(c, r, str(value), ha="center", va="center", color="white" if value > top / 2 else "black")
    ax.set_title("Matriz de confusão")
    return _svg(fig)


_GROUP_SERIES: tuple[tuple[str, Callable[[GroupAgreement], float | None]], ...] = (
    ("acurácia", lambda g: g.accuracy),
    ("κ", lambda g: g.kappa),
    ("aceitou rejeitadas", lambda g: g.false_accept),
)


def group_bars(groups: Mapping[str, GroupAgreement], title: str) -> str:
    """Agreement per group of answers (accuracy, κ, and the share of rejected answers the judge accepted)."""
    fig, ax = _pyplot().subplots(figsize=(5.2, 3))
    names = [name for name, g in groups.items() if g.n]
    width = 0.8 / len(_GROUP_SERIES)
    for i, (label, value_of) in enumerate(_GROUP_SERIES):
        values = [value_of(groups[name]) or 0.0 for name in names]
        ax.bar([j + i * width for j in range(len(names))], values, width=width, label=label)
    ax.set_xticks([j + width for j in range(len(names))], [f"{name}\n(n={groups[name].n})" for name in names])
    ax.set_ylim(min(0.0, *(g.kappa or 0.0 for g in groups.values())), 1.0)
    ax.axhline(0, color="#888", linewidth=0.8)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _svg(fig)
