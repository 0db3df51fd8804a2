"""What every command group shares: consoles, option types and choices, settings, error handling, progress.

Commands are thin: each parses flags, builds settings, calls one stage and
renders its result. User errors (:class:`LectureRagError`) are printed as
one clear message with exit code 2, never as a traceback. Defaults for
``--k`` and ``--mode`` come from the settings (``[retrieval]``), the one
source of defaults the web app reads too.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console, ConsoleOptions, ConsoleRenderable, RenderHook
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.segment import Segment

from lecture_rag.batch import LOCAL, Engine
from lecture_rag.config import HOME_ENV, Reranking, RetrievalMode, Settings, load_settings
from lecture_rag.embed import make_embedder
from lecture_rag.errors import LectureRagError
from lecture_rag.evaluate.judges import JUDGE_ENV_PREFIX
from lecture_rag.index.build import IndexStats, build_indexes, prune_embedding_cache, start_background_compaction
from lecture_rag.llm import LLM, make_llm
from lecture_rag.retrieve import Retriever
from lecture_rag.retrieve.rerank import make_reranker
from lecture_rag.store import RunStore, open_store
from lecture_rag.userfiles import printable
from lecture_rag.wire import to_data


class _Printable:
    """A renderable whose text reaches the terminal without control characters (rich's own codes stay)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        for segment in console.render(self.inner, options):
            yield segment if segment.control else Segment(printable(segment.text), segment.style)


class _PrintableHook(RenderHook):
    """Every print passes :func:`printable`: a title with ``ESC[2J`` from a sidecar or an old store stays text."""

    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
        return [_Printable(r) for r in renderables]


def _console(**kwargs: Any) -> Console:
    out = Console(**kwargs)
    out.push_render_hook(_PrintableHook())
    return out


console = _console()
err_console = _console(stderr=True)


class Waiting:
    """A spinner on stderr while a slow call (an LLM) has not answered; ``stop()`` ends it early (first token).

    On stderr, and transient, so stdout (the answer, ``--json``) stays clean; on a pipe rich draws nothing.
    """

    def __init__(self, message: str) -> None:
        self._status = err_console.status(message, spinner="dots")
        self._running = False

    def __enter__(self) -> Waiting:
        self._status.start()
        self._running = True
        return self

    def stop(self) -> None:
        if self._running:
            self._status.stop()
            self._running = False

    def __exit__(self, *exc: object) -> None:
        self.stop()


F = TypeVar("F", bound=Callable[..., Any])


class AskFormat(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    JSON = "json"


class EngineChoice(StrEnum):
    """Where batch work runs (``[batch] engine``)."""

    LOCAL = "local"
    RAY = "ray"


class ReportFormat(StrEnum):
    MARKDOWN = "markdown"
    CSV = "csv"
    JSON = "json"
    HTML = "html"


StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", help=f"Diretório do acervo (padrão: ${HOME_ENV}).", show_default=False),
]
KOpt = Annotated[
    int | None, typer.Option("--k", min=1, max=200, help="Quantos segmentos (padrão: \\[retrieval] k, 10).")
]
ModeOpt = Annotated[
    RetrievalMode | None,
    typer.Option("--mode", help="dense (E5), bm25 ou hybrid (RRF) (padrão: \\[retrieval] mode, dense)."),
]
RerankOpt = Annotated[
    Reranking | None,
    typer.Option(
        "--rerank",
        help=(
            "Reordenar os candidatos: none, passages, learned (modelo ajustado, offline), cross-encoder ou "
            "llm (padrão: \\[retrieval] rerank, learned)."
        ),
    ),
]
LLMOpt = Annotated[
    str | None,
    typer.Option(
        "--llm", help="none (extrativa), openai, auto (servidor local detectado) ou gguf:CAMINHO (padrão: config)."
    ),
]
JudgeLLMOpt = Annotated[
    str | None, typer.Option("--judge-llm", help="Juiz: none, openai ou gguf:CAMINHO (padrão: config).")
]
EngineOpt = Annotated[
    EngineChoice | None,
    typer.Option(
        "--engine",
        help="Onde rodar o trabalho em lote: local (este processo) ou ray (padrão: \\[batch] engine, local).",
    ),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Cluster Ray (HOST:PORTA, ray://HOST:PORTA ou auto; implica --engine ray). Padrão: \\[batch] ray_address, "
        "senão RAY_ADDRESS, senão um Ray local nesta máquina.",
    ),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option("--workers", min=1, max=4096, help="Atores do Ray por etapa (padrão: um por CPU do cluster)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Saída em JSON.")]
RunArg = Annotated[str, typer.Argument(help="Nome da rodada.")]


def user_errors(func: F) -> F:
    """Turn LectureRagError into a clear message and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LectureRagError as exc:
            err_console.print(f"[bold red]Erro:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


#: Flags whose name is not ``--`` and the name of the setting they override.
FLAG_NAMES: dict[str, str] = {
    "llm.backend": "--llm",
    "judge_llm.backend": "--judge-llm",
    "transcription.model": "--whisper-model",
    "web.allowed_hosts": "--allowed-host",
    "segmentation.window_seconds": "--window",
    "segmentation.max_window_seconds": "--window",  # the cap follows --window
    "segmentation.overlap_seconds": "--overlap",
}


def with_flags(settings: Settings, flags: Mapping[str, Any]) -> Settings:
    """``settings`` with the flags that were given (None: not given), validated like the config file's values.

    ``flags`` maps a setting's path to its flag's value (``{"retrieval.rerank": rerank}``);
    a bad value is a :class:`ConfigError` naming the flag.
    """
    given = {path: value for path, value in flags.items() if value is not None}
    return settings.with_overrides(given, flags=FLAG_NAMES)


def settings_for(store: Path | None, *, rerank: Reranking | None = None) -> Settings:
    """The settings of this invocation: config file and environment, with ``--store`` and ``--rerank`` applied."""
    return with_flags(load_settings(store), {"retrieval.rerank": rerank})


def with_batch(
    settings: Settings, engine: EngineChoice | None, ray_address: str | None, workers: int | None
) -> Settings:
    """Settings with ``--engine``, ``--ray-address`` and ``--workers`` applied to ``[batch]``.

    ``--ray-address`` alone means Ray; with ``--engine local`` it is a contradiction, refused.
    """
    if ray_address is not None and engine is EngineChoice.LOCAL:
        raise LectureRagError("--ray-address só vale com --engine ray: tire uma das duas opções.")
    if ray_address is not None and engine is None:
        engine = EngineChoice.RAY
    return with_flags(
        settings,
        {
            "batch.engine": None if engine is None else str(engine),
            "batch.ray_address": ray_address,
            "batch.workers": workers,
        },
    )


def retrieval_choice(settings: Settings, k: int | None, mode: RetrievalMode | None) -> tuple[int, RetrievalMode]:
    """``--k``/``--mode`` when given, else the configured defaults."""
    return k or settings.retrieval.k, mode or settings.retrieval.mode


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )


def print_json(data: Any, *, hide_urls: bool = False) -> None:
    """Records or plain data as indented JSON on stdout (the records' one wire shape); see ``to_data``."""
    sys.stdout.write(json.dumps(to_data(data, hide_urls=hide_urls), ensure_ascii=False, indent=2) + "\n")


@contextmanager
def run_store(store: Path | None) -> Iterator[RunStore]:
    """The evaluation runs of the store of this invocation (which must exist)."""
    with open_store(settings_for(store), create=False) as st:
        yield RunStore(st)


def open_retriever(settings: Settings) -> Retriever:
    """The retriever over the store of ``settings`` with the configured embedder and reranker."""
    store = open_store(settings, create=False)
    return Retriever.open(store, make_embedder(settings.embedder), settings, reranker=make_reranker(settings))


def answer_settings(settings: Settings, backend: str | None) -> Settings:
    """Settings with ``--llm`` (none | openai | gguf:PATH) applied to ``[llm]``."""
    return with_flags(settings, {"llm.backend": backend})


def answer_llm(settings: Settings, backend: str | None) -> LLM | None:
    """The answer LLM from ``--llm`` (none | openai | gguf:PATH) over the configured one."""
    return make_llm(answer_settings(settings, backend).llm)


def judge_settings(settings: Settings, backend: str | None) -> Settings:
    """Settings with ``--judge-llm`` applied to ``[judge_llm]``."""
    return with_flags(settings, {"judge_llm.backend": backend})


def judge_llm(settings: Settings) -> LLM | None:
    """The judge LLM ``[judge_llm]`` / ``LECTURE_RAG_JUDGE_LLM_*`` asks for (None: no judge)."""
    return make_llm(settings.judge_llm, env_prefix=JUDGE_ENV_PREFIX)


def index_corpus(
    settings: Settings, *, rebuild: bool, compact: bool = False, prune_cache: bool = False, engine: Engine = LOCAL
) -> IndexStats:
    """Embed what the cache lacks (batches run by ``engine``) and publish fresh indexes, with a progress bar."""
    embedder = make_embedder(settings.embedder, indexing=True)
    with open_store(settings, create=False) as st, progress_bar() as bar:
        task = bar.add_task("Indexando", total=None)

        def on_progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        stats = build_indexes(
            st, embedder, settings, rebuild=rebuild, compact=compact, progress=on_progress, engine=engine
        )
        if prune_cache:
            stats.cache_pruned = prune_embedding_cache(st, embedder, settings)
    if stats.compaction_due:
        log_path = start_background_compaction(settings.home)
        if log_path is not None:
            err_console.print(
                f"O índice acumulou deltas: a compactação começou em segundo plano (registro em {log_path}); "
                "as buscas seguem normalmente.",
                highlight=False,
            )
    return stats


def fmt(value: Any, digits: int = 3) -> str:
    return "n/d" if value is None else f"{value:.{digits}f}"
