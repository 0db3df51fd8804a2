"""Question-set runs: retrieve, answer and judge every question, resumably.

A run is identified by its name; its configuration snapshot (models, k, mode,
the answer and judge generation settings, prompt hashes, question file hash)
is stored with it, so two experiments can never be mixed under one name.
Work is saved per question, so a killed run resumes with only what is missing.

The questions are answered and judged by a batch engine (:mod:`lecture_rag.batch`):
the local one uses this process's answer engine on ``--concurrency`` threads;
the Ray one (``--engine ray``) sends each question to actors that each build
their own answerer once (:func:`run_worker`, from the settings the
:class:`Answerer` carries). Either way this process alone writes, one
question per transaction, as answers come back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from lecture_rag.batch import LOCAL, Engine, Job, LocalOnly, Stage
from lecture_rag.config import RetrievalMode, Settings
from lecture_rag.embed import make_embedder
from lecture_rag.errors import LectureRagError
from lecture_rag.evaluate.judges import (
    DEFAULT_CONFIG,
    JUDGE_ENV_PREFIX,
    KINDS,
    JudgeConfig,
    judge_answer,
    prompt_hashes,
)
from lecture_rag.evaluate.labels import DEFAULT_SCHEME, LabelScheme
from lecture_rag.generate.answer import AnswerEngine, template_hashes
from lecture_rag.llm import LLM, make_llm
from lecture_rag.records import Answer, JudgeKind, Judgment, Question, QuestionMeta, RunConfig
from lecture_rag.retrieve import Retriever
from lecture_rag.retrieve.rerank import make_reranker
from lecture_rag.store import RunStore, open_store

IMPORT_ANNOTATOR = "arquivo-de-perguntas"


def check_question_labels(questions: Sequence[Question], scheme: LabelScheme) -> None:
    """Labels given in the question file must belong to the scheme: refuse the run before it starts."""
    bad = [f"{q.id} ('{q.label}')" for q in questions if q.label and scheme.resolve(q.label) is None]
    if bad:
        shown = ", ".join(bad[:10]) + (f" e mais {len(bad) - 10}" if len(bad) > 10 else "")
        raise LectureRagError(
            f"Rótulos fora do esquema ({', '.join(scheme.codes)}) no arquivo de perguntas: {shown}. "
            "Corrija o campo 'label' ou o esquema [[labels]] da configuração."
        )


def file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def run_config(
    engine: AnswerEngine,
    judge_llm: LLM | None,
    *,
    k: int,
    mode: RetrievalMode,
    questions_path: Path,
    kinds: Sequence[JudgeKind] = KINDS,
    scheme: LabelScheme = DEFAULT_SCHEME,
    judge_config: JudgeConfig = DEFAULT_CONFIG,
) -> RunConfig:
    """What defines a run: a rerun with any of this changed is another experiment."""
    llm_cfg = engine.llm_settings
    return RunConfig(
        k=k,
        mode=str(mode),
        llm=engine.llm.name if engine.llm else "none (extrativa)",
        judge_llm=judge_llm.name if judge_llm else "none",
        judge_grammar=bool(judge_llm and judge_llm.applies_grammar),
        judge_structured=judge_llm.structured if judge_llm else "none",
        judges=list(kinds),
        embedder=engine.retriever.embedder.name,
        temperature=llm_cfg.temperature,
        seed=llm_cfg.seed,
        max_tokens=llm_cfg.max_tokens,
        judge_temperature=judge_config.temperature,
        judge_seed=judge_config.seed,
        judge_max_tokens=judge_config.max_tokens,
        judge_label_max_tokens=judge_config.label_max_tokens,
        prompts=template_hashes(),
        judge_prompts=prompt_hashes(scheme),
        labels=list(scheme.codes),
        label_scheme=scheme.to_config(),
        questions_file=questions_path.name,
        questions_sha=file_sha(questions_path),
    )


@dataclass(slots=True)
class RunStats:
    total: int = 0
    answered: int = 0
    judged: int = 0
    skipped: int = 0
    errors: int = 0
    workers: int = 1


def workers_for(concurrency: int, *llms: LLM | None) -> int:
    """Threads for a run: ``concurrency`` when every LLM involved takes parallel calls, else one.

    Extractive answers use no LLM (only the embedder, shared under a lock),
    so an HTTP judge still gets the concurrency asked for.
    """
    parallel = all(llm.parallel_safe for llm in llms if llm is not None)
    return max(1, concurrency) if parallel else 1


@dataclass(slots=True)
class Answerer:
    """What answers and judges the questions of a run: an answer engine and the judge LLM (None: no judge).

    ``settings`` are the ones both were made from (with the run's flags): a
    worker of another process builds its own answerer from them
    (:func:`run_worker`). Without them only this process can answer.
    """

    engine: AnswerEngine
    judge: LLM | None
    settings: Settings | None = None

    @property
    def setup(self) -> Callable[[int], Answerer]:
        """How a worker builds an answerer like this one (a value that pickles: the settings, not the models)."""
        if self.settings is None:
            return LocalOnly("Uma rodada em outros processos precisa das configurações para montar o respondedor.")
        return partial(run_worker, self.settings)


def run_worker(settings: Settings, cpus: int) -> Answerer:
    """The answerer of a worker process (a Ray actor), built once from the run's settings.

    ``settings`` carry the run's flags (``--llm``, ``--judge-llm``,
    ``--rerank``) so every worker answers as this process would. The store is
    opened read-only (only the driver writes) and the published index is
    loaded from ``settings.home``: on a cluster of several machines that
    folder must be readable at the same path on each (a shared disk), with
    the corpus in PostgreSQL or on that same disk.
    """
    embedder = settings.embedder
    if cpus > 0 and embedder.threads == 0:
        embedder = embedder.model_copy(update={"threads": cpus})
    store = open_store(settings, create=False, read_only=True)
    retriever = Retriever.open(store, make_embedder(embedder), settings, reranker=make_reranker(settings))
    engine = AnswerEngine(retriever, make_llm(settings.llm), settings.llm)
    return Answerer(engine, make_llm(settings.judge_llm, env_prefix=JUDGE_ENV_PREFIX), settings)


@dataclass(frozen=True, slots=True)
class RunPlan:
    """How every question of a run is answered and judged (the same for all; sent to each worker)."""

    k: int
    mode: RetrievalMode
    scheme: LabelScheme
    judge_config: JudgeConfig


#: One question to do: its position in the file, the question, the judges it lacks, its stored answer if any.
Todo = tuple[int, Question, list[JudgeKind], Answer | None]
#: What comes back: the new answer (None when it was stored already), the answer judged, the judgments.
Done = tuple[Answer | None, Answer, list[Judgment]]


def answer_and_judge(plan: RunPlan, answerer: Answerer, todo: Todo) -> Done:
    """The stage function: answer the question unless its answer is stored, then run the judges it lacks."""
    _, q, missing, answer = todo
    new_answer = None
    if answer is None:
        new_answer = answer = answerer.engine.answer(q.question, k=plan.k, mode=plan.mode)
    judgments = judge_answer(
        answerer.judge, answer, missing, question=q.question, scheme=plan.scheme, config=plan.judge_config
    )
    return new_answer, answer, judgments


def execute_run(
    runs: RunStore,
    name: str,
    questions: Sequence[Question],
    answerer: Answerer,
    *,
    k: int,
    mode: RetrievalMode,
    concurrency: int = 1,
    progress: Callable[[int, int], None] | None = None,
    kinds: Sequence[JudgeKind] = KINDS,
    scheme: LabelScheme = DEFAULT_SCHEME,
    judge_config: JudgeConfig = DEFAULT_CONFIG,
    batch: Engine = LOCAL,
) -> RunStats:
    """Answer and judge what is missing for each question of the run.

    ``batch`` answers and judges: an in-process engine with ``answerer`` on
    ``concurrency`` threads when its LLMs take parallel calls (with more than
    one, the engine's retriever must be shareable between threads,
    :class:`~lecture_rag.retrieve.SharedRetriever`), another engine in
    workers built from the answerer's settings (:attr:`Answerer.setup`). This
    thread alone writes, each question in its own transaction (its answer, its
    label from the question file, then its judgments), as its answer comes back.
    """
    answered = runs.answered(name)
    judged = runs.judged(name)
    workers = batch.at_once(workers_for(concurrency, answerer.engine.llm, answerer.judge))
    stats = RunStats(total=len(questions), workers=workers)
    existing = {item.qid: item.answer for item in runs.items(name)} if answered else {}
    todo: list[Todo] = []
    for position, q in enumerate(questions):
        missing = [kind for kind in kinds if kind not in judged.get(q.id, set())]
        if q.id in answered and not missing:
            stats.skipped += 1
        else:
            todo.append((position, q, missing, existing.get(q.id)))
    done = stats.skipped
    if progress:
        progress(done, stats.total)
    stage = Stage("run", answerer.setup, partial(answer_and_judge, RunPlan(k, mode, scheme, judge_config)))
    for index, (new_answer, answer, judgments) in batch.map(Job(stage, todo, local=answerer, threads=stats.workers)):
        position, q, _, _ = todo[index]
        if new_answer is not None:
            meta = QuestionMeta(q.answer, list(q.evidence), q.type)
            # The item and the file's label land in one transaction: a crash can never keep one without the other.
            label = (IMPORT_ANNOTATOR, scheme.resolve(q.label) or q.label) if q.label else None
            runs.save_item(name, q.id, position, q.question, meta, new_answer, label=label)
            stats.answered += 1
        runs.save_judgments(name, q.id, judgments)
        stats.judged += 1
        stats.errors += int(bool(answer.error))
        done += 1
        if progress:
            progress(done, stats.total)
    return stats
