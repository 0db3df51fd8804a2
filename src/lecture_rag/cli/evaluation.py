"""Evaluation commands: ``eval retrieval``, ``eval judges``, ``run``, ``runs``, ``annotate``, ``agreement``, ``report``,
``compare``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from lecture_rag.batch import Engine, open_engine
from lecture_rag.cli.common import (
    EngineOpt,
    JsonOpt,
    JudgeLLMOpt,
    KOpt,
    LLMOpt,
    ModeOpt,
    RayAddressOpt,
    ReportFormat,
    RerankOpt,
    RunArg,
    StoreOpt,
    WorkersOpt,
    answer_llm,
    answer_settings,
    console,
    fmt,
    index_corpus,
    judge_llm,
    judge_settings,
    open_retriever,
    print_json,
    progress_bar,
    retrieval_choice,
    run_store,
    settings_for,
    user_errors,
    with_batch,
)
from lecture_rag.cli.terminal import annotate_in_terminal
from lecture_rag.config import Reranking, RetrievalMode, Settings, env_var
from lecture_rag.errors import LectureRagError
from lecture_rag.evaluate.agreement import AgreementReport
from lecture_rag.evaluate.annotations import import_labels
from lecture_rag.evaluate.compare import compare_runs
from lecture_rag.evaluate.judge_eval import JudgeEvalRequest, JudgesReport, plan_judge_eval, run_judge_eval
from lecture_rag.evaluate.judges import config_from_settings, parse_judge_kinds
from lecture_rag.evaluate.judgesets import (
    Dataset,
)
from lecture_rag.evaluate.labels import LabelScheme, scheme_from_settings, scheme_of_run
from lecture_rag.evaluate.questions import (
    ensure_squad_corpus,
    evidence_warning,
    is_squad,
    load_questions,
    load_squad,
)
from lecture_rag.evaluate.retrieval import QuestionDetail, QuestionResult, RetrievalReport, evaluate, mode_report
from lecture_rag.evaluate.run import Answerer, check_question_labels, execute_run, file_sha, run_config
from lecture_rag.evaluate.summary import RunOverview, run_summary
from lecture_rag.generate.answer import AnswerEngine
from lecture_rag.records import Hit, JudgeKind, Question
from lecture_rag.report import run_report
from lecture_rag.retrieve import Retriever, SearchRequest, SharedRetriever
from lecture_rag.retrieve.rerank import Reranker, make_reranker
from lecture_rag.store import RunStore, open_store
from lecture_rag.store.runs import annotator_name

# SQuAD files are evaluated in stores of their own under this folder of the user's store: their
# paragraphs (one-segment pseudo-videos) must never show up in the user's searches and answers.
EVAL_CORPORA = "eval-corpora"
ALL_MODES = tuple(RetrievalMode)


def _squad_settings(settings: Settings, questions: Path) -> tuple[Settings, list[Question]]:
    """A store of its own for a SQuAD file (keyed by the file's content), ingested and indexed."""
    paragraphs, qs = load_squad(questions)
    home = settings.home / EVAL_CORPORA / f"squad-{file_sha(questions)}"
    # A scratch corpus of this machine's own, whatever the shared store is.
    squad = settings.with_overrides({"home": home, "store.url": ""})
    with open_store(squad) as st:
        ensure_squad_corpus(st, paragraphs, str(questions.resolve()))
    index_corpus(squad, rebuild=False)
    return squad, qs


@user_errors
def eval_retrieval(
    questions: Annotated[Path, typer.Argument(help="Perguntas em JSON Lines, ou um arquivo SQuAD.")],
    store: StoreOpt = None,
    k: KOpt = None,
    mode: Annotated[
        list[RetrievalMode] | None, typer.Option("--mode", help="dense, bm25, hybrid (repita; padrão: os três).")
    ] = None,
    rerank: Annotated[
        list[Reranking] | None,
        typer.Option(
            "--rerank",
            help="none, passages, learned, cross-encoder, llm (repita; padrão: none e o de \\[retrieval] rerank).",
        ),
    ] = None,
    details: Annotated[
        bool, typer.Option("--details", help="Também, por pergunta: posição do 1º acerto e distância do link.")
    ] = False,
    every: Annotated[
        bool,
        typer.Option("--all", help="Na tabela, os três modos com e sem reordenação (o --json sempre traz todos)."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Recall@1/5/10, hit@1/10, MRR@10, nDCG@10 e distância dos links por modo e reordenador.

    Um arquivo SQuAD é avaliado num acervo próprio (em EVAL_CORPORA dentro do acervo), nunca no seu.
    """
    settings = settings_for(store)
    k, _ = retrieval_choice(settings, k, None)
    one = not (as_json or every)  # the table shows the configuration `ask` uses, unless asked for more
    modes = list(mode or ([settings.retrieval.mode] if one else ALL_MODES))
    rerankers = list(
        dict.fromkeys(rerank or ([settings.retrieval.rerank] if one else [Reranking.NONE, settings.retrieval.rerank]))
    )
    if is_squad(questions):
        settings, qs = _squad_settings(settings, questions)
    else:
        qs = load_questions(questions)
    retriever = open_retriever(settings)
    warning = evidence_warning(qs, retriever.store)
    if warning:
        typer.echo(warning, err=True)  # one plain line: video ids are not markup
    report = RetrievalReport(questions=len(qs), k=k)
    with progress_bar() as bar:
        for m in modes:
            for r in rerankers:
                name = str(m) if r is Reranking.NONE else f"{m}+{r}"
                results = _evaluate_one(retriever, qs, k, m, make_reranker(settings, r), bar, name)
                report.modes[name] = mode_report(results, with_details=details)
    if as_json:
        print_json(report)
        return
    _print_retrieval_report(report)


def _evaluate_one(
    retriever: Retriever,
    qs: list[Question],
    k: int,
    mode: RetrievalMode,
    reranker: Reranker | None,
    bar: Any,
    name: str,
) -> list[QuestionResult]:
    """Every question through one mode and reranker, with a progress bar."""
    task = bar.add_task(f"Avaliando {name}", total=len(qs))

    def step(done: int, total: int) -> None:
        bar.update(task, completed=done)

    def search(q: str) -> tuple[Hit, ...]:
        return retriever.search(SearchRequest(q, k=k, mode=mode, reranker=reranker)).hits

    return evaluate(qs, search, progress=step)


#: The table's rows: a metric's key and its name in Portuguese (the JSON keeps the keys).
METRIC_ROWS = (
    ("recall@1", "recall@1 (evidência no 1º)"),
    ("recall@5", "recall@5"),
    ("recall@10", "recall@10"),
    ("hit@1", "acerto@1 (algum relevante)"),
    ("hit@10", "acerto@10"),
    ("mrr@10", "MRR@10 (posição média)"),
    ("ndcg@10", "nDCG@10"),
)
OFFSET_ROWS = (
    ("offset_median", "link: mediana (s)"),
    ("offset_p90", "link: percentil 90 (s)"),
    ("window_offset_median", "início da janela: mediana (s)"),
)


def _print_retrieval_report(report: RetrievalReport) -> None:
    """One column per configuration, one row per metric: readable at 80 columns with one to six configurations."""
    table = Table(title=f"Recuperação: {report.questions} perguntas, k={report.k}")
    table.add_column("métrica")
    for m in report.modes:
        table.add_column(escape(m), justify="right")
    rows = report.modes.values()
    table.add_row("perguntas avaliadas", *(str(r.overall.n) for r in rows))
    for key, name in METRIC_ROWS:
        table.add_row(name, *(f"{r.overall.metrics[key]:.3f}" for r in rows))
    for key, name in OFFSET_ROWS:
        table.add_row(name, *(fmt(r.overall.offsets[key], 1) for r in rows))
    console.print(table)
    for m, row in report.modes.items():
        if len(row.by_type) > 1 and len(row.by_type) <= 12:
            sub = Table(title=f"{m}: por tipo de pergunta")
            for col in ("tipo", "n", "recall@1", "recall@10", "MRR@10"):
                sub.add_column(col, justify="right")
            for t, r in row.by_type.items():
                sub.add_row(escape(t), str(r.n), *(f"{r.metrics[c]:.3f}" for c in ("recall@1", "recall@10", "mrr@10")))
            console.print(sub)
    for m, row in report.modes.items():
        if row.questions is not None:
            _print_details(m, row.questions)
    console.print(
        "[dim]recall@k: fração dos trechos de evidência cobertos pelos k primeiros resultados; "
        "acerto@k: fração das perguntas com algum resultado relevante entre os k primeiros; "
        "link: segundos entre o ponto citado do 1º resultado relevante e o início da evidência; "
        "início da janela: o mesmo com o link no início da janela. Todas as configurações e métricas: "
        "--all ou --json.[/]"
    )


def _print_details(mode: str, rows: list[QuestionDetail]) -> None:
    """Per question: where the first relevant hit came and how far its link lands."""
    table = Table(title=f"{mode}: por pergunta")
    for col in ["id", "tipo", "1º acerto", "recall@10", "link (s)", "janela (s)"]:
        table.add_column(col, justify="right")
    for r in rows:
        first = "-" if not r.answerable else ("não achou" if r.first_rank is None else str(r.first_rank))
        table.add_row(
            escape(r.id), escape(r.type or "-"), first, fmt(r.recall_at_10, 2), fmt(r.offset, 1),
            fmt(r.window_offset, 1),
        )  # fmt: skip
    console.print(table)


@user_errors
def eval_judges(
    dataset_path: Annotated[
        Path, typer.Argument(metavar="DATASET", help="Respostas rotuladas por pessoas: arquivo ou pasta.")
    ],
    judge_llm_backend: Annotated[
        str | None,
        typer.Option("--judge-llm", help="Juiz: openai, gguf:CAMINHO ou file:VEREDITOS (padrão: config)."),
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Avaliar só N itens sorteados.")] = None,
    sample_seed: Annotated[int, typer.Option("--sample-seed", help="Semente do sorteio (--limit).")] = 0,
    examples: Annotated[
        Path | None, typer.Option("--examples", help="Exemplos rotulados (JSONL) para o prompt do juiz.")
    ] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Pular linhas malformadas (e avisar).")] = False,
    structured: Annotated[
        str | None, typer.Option("--structured", help="Forma do veredito: auto, json_schema, gbnf ou none.")
    ] = None,
    judges: Annotated[str, typer.Option("--judges", help="label, ou ar,label.")] = "label",
    repeat: Annotated[int, typer.Option("--repeat", min=0, help="Itens julgados duas vezes (autoconsistência).")] = 20,
    name: Annotated[str | None, typer.Option("--name", help="Nome da rodada (padrão: derivado).")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=32, help="Itens em paralelo (servidores HTTP).")] = 4,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
    engine: EngineOpt = None,
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = None,
) -> None:
    """Medir um juiz contra pessoas: acurácia, κ (IC 95%), matriz de confusão, vieses e custo (retomável)."""
    settings = with_batch(settings_for(store), engine, ray_address, workers)
    if structured is not None:  # the older grammar switch must not override the mode asked for
        settings = settings.with_overrides(
            {"judge_llm.structured": structured, "judge_llm.grammar": None},
            flags={"judge_llm.structured": "--structured"},
        )
    verdicts = _verdict_file(judge_llm_backend)
    if verdicts is None:
        settings = judge_settings(settings, judge_llm_backend)
    request = JudgeEvalRequest(
        dataset_path, parse_judge_kinds(judges), verdicts=verdicts, limit=limit, sample_seed=sample_seed,
        examples=examples, skip_bad=skip_bad, repeat=repeat, name=name, concurrency=concurrency,
    )  # fmt: skip
    plan = plan_judge_eval(request, settings.judge_llm, scheme_from_settings(settings.labels))
    with open_engine(settings.batch) as batch, open_store(settings) as st:  # the engine first: see run_questions
        report = run_judge_eval(RunStore(st), plan, batch=batch, bars=_progress)
    if as_json:
        print_json(report)
        return
    _print_judges(report, plan.data)


def _verdict_file(backend: str | None) -> Path | None:
    """The file of ``--judge-llm file:PATH`` (verdicts computed elsewhere), or None for an LLM judge."""
    if backend is not None and backend.strip().lower().startswith("file:"):
        return Path(backend.strip()[5:])
    return None


@contextmanager
def _progress(label: str, total: int) -> Iterator[Callable[[int, int], None]]:
    """A progress bar for the block, and the function that moves it."""
    with progress_bar() as bar:
        task = bar.add_task(label, total=total)
        yield lambda done, n: bar.update(task, completed=done, total=n)


def _print_judges(report: JudgesReport, data: Dataset) -> None:
    d = report.dataset
    console.print(
        f"[bold]{escape(d.name)}[/] ({escape(d.file)}): {d.sample} de {d.items} itens"
        + (f" (sorteio, semente {d.sample_seed})" if d.sample_seed is not None else "")
        + f" · juiz {escape(report.judge)}",
        highlight=False,
    )
    for why, n in d.left_out.items():
        console.print(f"[dim]Fora da avaliação: {n} ({escape(why)}).[/]", highlight=False)
    for problem in data.problems[:10]:
        console.print(f"[yellow]Linha pulada (--skip-bad): {escape(problem)}[/]", highlight=False)
    for r in report.results:
        a, j = r.agreement, r.judge_vs_people
        ci = a.kappa_ci95
        console.print(
            f"\n[bold]{escape(r.variant)}[/] (rodada {escape(r.run)}): {a.n} pares, "
            f"acurácia {fmt(a.accuracy)}, κ {fmt(a.kappa)}"
            + (f" (IC95% {fmt(ci[0])}–{fmt(ci[1])})" if ci else "")
            + f", vereditos ilegíveis {j.unparsed}",
            highlight=False,
        )
        _print_matrix(a)
        table = Table(title="Vieses: concordância por grupo")
        for col in ("grupo", "n", "acurácia", "κ", "aceitou o que pessoas rejeitaram"):
            table.add_column(col, justify="right")
        groups = [("resposta " + k, v) for k, v in j.by_length.items()]
        groups += [("fato correto: " + k, v) for k, v in (j.by_position or {}).items()]
        for group, b in groups:
            fa = b.false_accept
            accepted = f"{b.accepted_by_judge}/{b.rejected_by_people}" + (f" ({fa:.1%})" if fa is not None else "")
            table.add_row(escape(group), str(b.n), fmt(b.accuracy), fmt(b.kappa), accepted)
        console.print(table)
        for label, dist in (r.ar_by_people_label or {}).items():
            console.print(
                f"AR com rótulo de pessoas {escape(label)}: n={dist.n}, média {fmt(dist.mean, 2)}, "
                f"histograma {dist.histogram}",
                highlight=False,
            )
        sc, cost = j.self_consistency, j.cost
        if sc:
            console.print(
                f"Autoconsistência: {sc.n} itens julgados duas vezes, {sc.identical:.1%} com o mesmo veredito "
                f"({sc.identical_text:.1%} com o mesmo texto).",
                highlight=False,
            )
        console.print(
            f"Custo: {cost.calls} chamadas, {cost.prompt_tokens} + {cost.completion_tokens} tokens, "
            f"{cost.seconds:.1f} s" + (f" ({cost.seconds_per_item:.2f} s por item)" if cost.seconds_per_item else ""),
            highlight=False,
        )
    first = escape(report.results[0].run)
    console.print(f"[dim]Página com gráficos: lecture-rag report {first} --format html -o juiz.html[/]")


def _confusion_table(a: AgreementReport, rows: str, columns: str) -> Table:
    """The confusion matrix of an agreement report (``rows`` and ``columns`` name who labelled)."""
    table = Table(title=f"Matriz de confusão (linhas: {rows}, colunas: {columns})")
    table.add_column("")
    for label in a.labels:
        table.add_column(escape(label), justify="right")
    for label, row in zip(a.labels, a.confusion, strict=True):
        table.add_row(escape(label), *(str(v) for v in row))
    return table


def _print_matrix(a: AgreementReport) -> None:
    console.print(_confusion_table(a, "pessoas", "juiz"))
    per = Table(title="Por rótulo (pessoas como referência)")
    for col in ("rótulo", "precisão", "revocação", "F1", "suporte"):
        per.add_column(col, justify="right")
    for s in a.per_label:
        per.add_row(escape(s.label), fmt(s.precision), fmt(s.recall), fmt(s.f1), str(s.support))
    console.print(per)


@user_errors
def run_questions(
    questions: Annotated[Path, typer.Argument(help="Perguntas em JSON Lines (com 'label' opcional).")],
    name: Annotated[str, typer.Option("--name", help="Nome da rodada (retoma se já existir).")],
    store: StoreOpt = None,
    llm: LLMOpt = None,
    judge_llm_backend: JudgeLLMOpt = None,
    k: KOpt = None,
    mode: ModeOpt = None,
    concurrency: Annotated[
        int, typer.Option(min=1, max=32, help="Perguntas em paralelo, quando os LLMs aceitam (servidores HTTP).")
    ] = 4,
    judges: Annotated[
        str, typer.Option("--judges", help="Juízes a rodar: ar, cr, g, label (separados por vírgula).")
    ] = "ar,cr,g,label",
    rerank: RerankOpt = None,
    engine: EngineOpt = None,
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = None,
) -> None:
    """Responder e avaliar todas as perguntas de um arquivo (retomável)."""
    settings = judge_settings(settings_for(store, rerank=rerank), judge_llm_backend)
    settings = with_batch(answer_settings(settings, llm), engine, ray_address, workers)
    k, mode = retrieval_choice(settings, k, mode)
    kinds = parse_judge_kinds(judges)
    scheme = scheme_from_settings(settings.labels)
    qs = load_questions(questions)
    check_question_labels(qs, scheme)
    with open_engine(settings.batch) as batch:  # before the store: a cluster that does not answer writes nothing
        _run_on(
            batch, settings, questions, qs, name, k=k, mode=mode, kinds=kinds, scheme=scheme, concurrency=concurrency
        )


def _run_on(
    batch: Engine,
    settings: Settings,
    questions: Path,
    qs: list[Question],
    name: str,
    *,
    k: int,
    mode: RetrievalMode,
    kinds: tuple[JudgeKind, ...],
    scheme: LabelScheme,
    concurrency: int,
) -> None:
    """The run itself, its answers and judgments made by ``batch`` (this process writes them)."""
    retriever = SharedRetriever(open_retriever(settings))
    warning = evidence_warning(qs, retriever.store)
    if warning:
        typer.echo(warning, err=True)  # one plain line: video ids are not markup
    engine = AnswerEngine(retriever, answer_llm(settings, None), settings.llm)
    judge = judge_llm(settings)
    judge_config = config_from_settings(settings.judge_llm)
    config = run_config(
        engine, judge, k=k, mode=mode, questions_path=questions, kinds=kinds, scheme=scheme, judge_config=judge_config
    )
    runs = RunStore(retriever.store)
    with runs.running(name):
        created = runs.start(name, config)
        console.print(
            f"Rodada '{escape(name)}' {'criada' if created else 'retomada'}: {len(qs)} perguntas.", highlight=False
        )
        if judge is None:
            console.print(f"[yellow]Nenhum juiz configurado: as notas ficam 'n/d' ({env_var('judge_llm')}*).[/]")
        with progress_bar() as bar:
            task = bar.add_task("Respondendo e avaliando", total=len(qs))
            stats = execute_run(
                runs,
                name,
                qs,
                Answerer(engine, judge, settings),
                k=k,
                mode=mode,
                concurrency=concurrency,
                kinds=kinds,
                scheme=scheme,
                judge_config=judge_config,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                batch=batch,
            )
    where = "" if batch.name == "local" else f", {batch.name}"
    judged = f"{stats.judged} avaliadas" if judge is not None else "nenhuma avaliada (sem juiz)"
    console.print(
        f"{stats.answered} respondidas, {judged}, {stats.skipped} já prontas, "
        f"{stats.errors} com erro do LLM ({stats.workers} em paralelo{where}). Veja: lecture-rag report {escape(name)}",
        highlight=False,
    )


@user_errors
def list_runs(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Listar as rodadas de avaliação."""
    with run_store(store) as runs:
        rows = runs.summaries()
    if as_json:
        print_json(rows)
        return
    table = Table(title="Rodadas")
    for col in ("nome", "criada", "perguntas", "anotadas", "LLM", "juiz"):
        table.add_column(col)
    for r in rows:
        cells = (r.name, r.created_at, r.items, r.annotated, r.config.llm, r.config.judge_llm)
        table.add_row(*(escape(str(cell)) for cell in cells))
    console.print(table)


@user_errors
def annotate(
    args: Annotated[list[str], typer.Argument(help="RODADA (modo terminal) ou: import RODADA ARQUIVO")],
    store: StoreOpt = None,
    annotator: Annotated[str, typer.Option("--annotator", "-a", help="Quem anota.")] = "",
) -> None:
    """Anotar respostas (c/p/i/n por tecla) ou importar rótulos: 'annotate import RODADA ARQUIVO'."""
    with run_store(store) as runs:
        if args[0] == "import":
            if len(args) != 3:
                raise LectureRagError("Uso: lecture-rag annotate import RODADA ARQUIVO.csv|.jsonl|.json")
            runs.require(args[1])
            n = import_labels(runs, args[1], Path(args[2]), annotator_name(annotator) if annotator else "importado")
            console.print(f"{n} anotação(ões) importada(s) para a rodada '{escape(args[1])}'.", highlight=False)
            return
        if len(args) != 1:
            raise LectureRagError("Uso: lecture-rag annotate RODADA [--annotator NOME]")
        runs.require(args[0])
        who = annotator_name(annotator or typer.prompt("Seu nome (anotador)"))
        annotate_in_terminal(runs, args[0], who, console)


@user_errors
def agreement(
    run: RunArg,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Concordância entre anotação manual e automatizada, e entre anotadores."""
    with run_store(store) as runs:
        summary = run_summary(runs.items(run), scheme_of_run(runs.require(run)))
    if as_json:
        print_json(summary)
        return
    _print_summary(run, summary)


def _answers_line(s: RunOverview) -> str:
    """The answers' counts in words (not a Python dict)."""
    a = s.answers
    return (
        f"{a.extractive} extrativa(s), {a.abstained} abstenção(ões), {a.no_citations} sem citação, "
        f"{a.invalid_citations} com citação inválida, {a.llm_errors} com erro do LLM"
    )


def _print_summary(run: str, s: RunOverview) -> None:
    console.print(
        f"[bold]Rodada {escape(run)}[/]: {s.questions} perguntas, {s.annotated} com anotação manual",
        highlight=False,
    )
    console.print(f"Respostas: {_answers_line(s)}", highlight=False)
    for kind, j in s.judges.items():
        if not j.judged:
            console.print(f"Juiz {kind}: não pedido nesta rodada (--judges)", highlight=False)
            continue
        console.print(
            f"Juiz {kind}: {j.wording}" + (f" ({escape('; '.join(j.errors))})" if j.errors else ""),
            highlight=False,
        )
    if s.retrieval:
        r = s.retrieval.metrics
        console.print(
            f"Recuperação ({s.retrieval.n}): R@1 {fmt(r['recall@1'])}, R@5 {fmt(r['recall@5'])}, "
            f"R@10 {fmt(r['recall@10'])}, hit@1 {fmt(r['hit@1'])}, hit@10 {fmt(r['hit@10'])}, "
            f"MRR@10 {fmt(r['mrr@10'])}, nDCG@10 {fmt(r['ndcg@10'])}"
        )
    a = s.agreement
    if not a:
        console.print(f"[yellow]{escape(str(s.agreement_note))}[/]", highlight=False)
    else:
        ci = a.kappa_ci95
        console.print(
            f"Manual × automatizada: {a.n} pares, acurácia {fmt(a.accuracy)}, κ {fmt(a.kappa)}"
            + (f" (IC95% {fmt(ci[0])}–{fmt(ci[1])})" if ci else "")
            + f", κ ponderado linear {fmt(a.weighted.linear)}"
        )
        console.print(_confusion_table(a, "manual", "automatizada"))
        for note in a.notes:
            console.print(f"[dim]{escape(note)}[/]", highlight=False)
    if s.inter_annotator:
        ia = s.inter_annotator
        console.print(f"Entre anotadores: κ médio {fmt(ia.mean_pairwise_kappa)}, Fleiss {fmt(ia.fleiss_kappa)}")
    for label, dist in s.ar_by_manual_label.items():
        console.print(
            f"AR com rótulo manual {escape(label)}: n={dist.n}, média {fmt(dist.mean, 2)}, histograma {dist.histogram}",
            highlight=False,
        )


@user_errors
def report(
    run: RunArg,
    store: StoreOpt = None,
    fmt_: Annotated[
        ReportFormat, typer.Option("--format", help="markdown, csv, json ou html.")
    ] = ReportFormat.MARKDOWN,
    hide_urls: Annotated[bool, typer.Option("--hide-urls", help="Ocultar URLs.")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Arquivo de saída.")] = None,
) -> None:
    """Relatório da rodada: registros no formato-semente (markdown), CSV, JSON ou página HTML."""
    with run_store(store) as runs:
        config = runs.require(run)
        items = runs.items(run)
    if fmt_ == ReportFormat.MARKDOWN:
        text = run_report.markdown_report(items, hide=hide_urls)
    elif fmt_ == ReportFormat.CSV:
        text = run_report.csv_report(items, hide=hide_urls)
    else:
        summary = run_summary(items, scheme_of_run(config))
        render = run_report.json_report if fmt_ == ReportFormat.JSON else run_report.html_report
        text = render(run, config, items, summary, hide=hide_urls)
    if output:
        run_report.write_report(output, text)
        console.print(f"Relatório gravado em {escape(str(output))}", highlight=False)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


@user_errors
def compare(
    run_a: Annotated[str, typer.Argument(help="Rodada A.")],
    run_b: Annotated[str, typer.Argument(help="Rodada B.")],
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Comparar duas rodadas: métricas lado a lado e perguntas que mudaram de rótulo."""
    with run_store(store) as runs:
        scheme_a, scheme_b = scheme_of_run(runs.require(run_a)), scheme_of_run(runs.require(run_b))
        result = compare_runs(runs.items(run_a), runs.items(run_b), scheme_a, scheme_b)
    if as_json:
        print_json(result)
        return
    table = Table(title=f"{escape(run_a)} × {escape(run_b)}")
    for col in ("métrica", run_a, run_b, "diferença"):
        table.add_column(escape(col), justify="right")
    for m in result.metrics:
        delta = None if m.a is None or m.b is None else m.b - m.a
        table.add_row(escape(m.name), fmt(m.a), fmt(m.b), "n/d" if delta is None else f"{delta:+.3f}")
    console.print(table)
    flips = result.flips
    console.print(f"{len(flips)} pergunta(s) mudaram de rótulo:" if flips else "Nenhuma pergunta mudou de rótulo.")
    for f in flips:
        console.print(
            escape(f"- {f.qid} ({f.which}): {f.a} → {f.b}  {f.question[:80]}"),
            highlight=False,
        )
    if result.labelled_in_one:
        console.print(
            f"[dim]{result.labelled_in_one} rótulo(s) em só uma das rodadas (pergunta não anotada ou não julgada "
            "na outra): não contam como mudança. As frações 'manual X' são sobre as respostas anotadas.[/]",
            highlight=False,
        )
