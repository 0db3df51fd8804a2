"""Judges measured against people: ``lecture-rag eval judges`` runs a judge over a labelled data set.

An evaluation is stored as a run (:class:`~lecture_rag.store.RunStore`): one
item per labelled answer, the people's label as the annotation of
:data:`PEOPLE`, the judge's verdicts as judgments, a second verdict on the
items judged twice under ``auto_label#2``. So it resumes like ``run`` (each
item in its own transaction; a killed evaluation redoes only what is
missing), and ``agreement``, ``report`` and the web pages read it like any
run. A judge is an LLM, or a file of verdicts computed elsewhere
(``file:PATH``), scored the same way through one protocol
(:class:`~lecture_rag.evaluate.judges.protocol.Judge`).

:func:`plan_judge_eval` reads what ``eval judges`` asks for (data set,
sample, examples, judge) before anything is opened for writing;
:func:`run_judge_eval` judges what is missing on a batch engine (this
process writes) and scores each variant against people.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

from pydantic.dataclasses import dataclass as record

from lecture_rag.batch import LOCAL, Engine, Job, Stage
from lecture_rag.config import JudgeLLMSettings
from lecture_rag.errors import LectureRagError
from lecture_rag.evaluate.agreement import AgreementReport, ScoreSummary, agreement, score_distribution
from lecture_rag.evaluate.judges import JudgeConfig, config_from_settings
from lecture_rag.evaluate.judges.protocol import FileJudge, Judge, llm_judge
from lecture_rag.evaluate.judgesets import (
    Dataset,
    LabelledAnswer,
    draw_order,
    load_dataset,
    load_examples,
    load_file_verdicts,
    refuse_problems,
    sample,
)
from lecture_rag.evaluate.labels import LabelScheme
from lecture_rag.evaluate.run import file_sha
from lecture_rag.evaluate.summary import (
    REFERENCE_SEPARATOR,
    REPEAT,
    JudgeVsPeople,
    auto_label,
    judge_vs_people,
    judgment_score,
    manual_label,
)
from lecture_rag.records import JUDGES_KIND, JudgeKind, Judgment, QuestionMeta, RunConfig, RunItem
from lecture_rag.store import RunStore
from lecture_rag.wire import to_data

PEOPLE = "pessoas"

Progress = Callable[[int, int], None]
#: Opens the progress display of one variant (its label, its number of items) for the block.
ProgressBars = Callable[[str, int], AbstractContextManager[Progress]]


def eval_config(
    dataset: Dataset,
    judge: Judge,
    kinds: Sequence[JudgeKind],
    scheme: LabelScheme,
    config: JudgeConfig,
) -> RunConfig:
    """What defines an evaluation: the data set, the judge and everything that shapes its verdicts.

    The sample (``--limit``, ``--sample-seed``) is not part of it: items are
    keyed by their id in the data set, so a larger sample reuses every
    verdict already stored.
    """
    examples = [asdict(e) for e in config.examples]
    return RunConfig(
        kind=JUDGES_KIND,
        dataset=dataset.name,
        dataset_file=dataset.path.name,
        dataset_sha=file_sha(dataset.path),
        llm=f"respostas do conjunto {dataset.name}",
        k=0,
        mode="-",
        embedder="-",
        **judge.snapshot(kinds, scheme, config),
        examples=hashlib.sha256(json.dumps(examples, sort_keys=True).encode()).hexdigest()[:16] if examples else None,
        labels=list(scheme.codes),
        label_scheme=scheme.to_config(),
    )


def default_name(dataset: Dataset, config: RunConfig) -> str:
    """``juizes-DATASET-HASH``: the same data set and judge settings always find the same stored evaluation."""
    digest = hashlib.sha256(json.dumps(to_data(config), sort_keys=True).encode()).hexdigest()[:8]
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in dataset.name)[:40].strip("-.") or "dados"
    return f"juizes-{slug}-{digest}"


@dataclass(slots=True)
class EvalStats:
    total: int = 0
    judged: int = 0
    repeated: int = 0
    skipped: int = 0
    workers: int = 1


#: One item to judge: the item, the kinds it lacks, and ``""`` (its first verdict) or :data:`REPEAT` (its second).
Task = tuple[LabelledAnswer, list[JudgeKind], str]


def judge_task(scheme: LabelScheme, config: JudgeConfig, judge: Judge, task: Task) -> list[Judgment]:
    """The stage function: one item's missing judgments (in this process or a batch engine's worker)."""
    item, kinds, _ = task
    return judge.judge(item, kinds, scheme, config)


def _tasks(
    items: Sequence[LabelledAnswer],
    kinds: Sequence[JudgeKind],
    stored: set[str],
    judged: Mapping[str, set[str]],
    again: set[str],
) -> list[Task]:
    """What is missing: an item not stored or lacking a kind, and the second verdicts of the repeated items."""
    tasks: list[Task] = []
    for item in items:
        have = judged.get(item.id, set())
        first = [k for k in kinds if k not in have]
        second = [k for k in kinds if item.id in again and k + REPEAT not in have]
        if item.id not in stored or first:
            tasks.append((item, first, ""))
        if second:
            tasks.append((item, second, REPEAT))
    return tasks


def execute_judge_eval(
    runs: RunStore,
    name: str,
    items: Sequence[LabelledAnswer],
    judge: Judge,
    *,
    kinds: Sequence[JudgeKind],
    scheme: LabelScheme,
    config: JudgeConfig,
    repeat: Sequence[str] = (),
    concurrency: int = 1,
    progress: Progress | None = None,
    batch: Engine = LOCAL,
) -> EvalStats:
    """Judge what is missing: every item once, the items in ``repeat`` (ids) a second time.

    ``batch`` judges: in this process on ``concurrency`` threads when the
    judge takes parallel calls, or in workers that build their own judge
    (:attr:`Judge.setup`). This thread alone writes, one item per
    transaction, so a killed evaluation loses at most the items in flight.
    """
    kinds = judge.kinds(kinds)
    stored = runs.answered(name)
    again = set(repeat) if judge.repeatable else set()
    tasks = _tasks(items, kinds, stored, runs.judged(name), again)
    workers = batch.at_once(max(1, concurrency) if judge.parallel_safe else 1)
    stats = EvalStats(total=len(items) + len(again & {i.id for i in items}), workers=workers)
    done = stats.total - len(tasks)
    stats.skipped = done
    if progress:
        progress(done, stats.total)
    saved = set(stored)
    stage = Stage(f"judge:{judge.name}", judge.setup, partial(judge_task, scheme, config))
    for index, judgments in batch.map(Job(stage, tasks, local=judge, threads=workers)):
        item, _, suffix = tasks[index]
        if item.id not in saved:
            meta = QuestionMeta(REFERENCE_SEPARATOR.join(item.references) or None, [], item.source)
            runs.save_item(name, item.id, item.position, item.question, meta, item.answer, (PEOPLE, item.label))
            saved.add(item.id)
        runs.save_judgments(name, item.id, judgments, suffix)
        if suffix:
            stats.repeated += 1
        else:
            stats.judged += 1
        done += 1
        if progress:
            progress(done, stats.total)
    return stats


@dataclass(frozen=True, slots=True)
class JudgeEvalRequest:
    """What ``eval judges`` asks for: the data set and its sample, the judge, its examples, the repeat, the name.

    ``verdicts`` is a file of verdicts computed elsewhere (``file:PATH``);
    without it the judge is the LLM of the judge settings.
    """

    dataset: Path
    kinds: tuple[JudgeKind, ...]
    verdicts: Path | None = None
    limit: int | None = None
    sample_seed: int = 0
    examples: Path | None = None
    skip_bad: bool = False
    repeat: int = 20
    name: str | None = None
    concurrency: int = 4


@dataclass(frozen=True, slots=True)
class JudgeEvalPlan:
    """An evaluation ready to run: the data read and sampled, the judge made, the variants (without, with examples)."""

    request: JudgeEvalRequest
    data: Dataset
    items: list[LabelledAnswer]
    judge: Judge
    scheme: LabelScheme
    variants: list[tuple[str, JudgeConfig]]
    twice: tuple[str, ...]  # the ids judged a second time (self-consistency)


def plan_judge_eval(request: JudgeEvalRequest, settings: JudgeLLMSettings, scheme: LabelScheme) -> JudgeEvalPlan:
    """Read and check everything the evaluation needs, before anything is opened for writing."""
    data = load_dataset(request.dataset, scheme)
    if not request.skip_bad:
        refuse_problems(data)
    items = sample(data.items, request.limit, request.sample_seed)
    if not items:
        raise LectureRagError(f"{data.path.name}: nenhum item rotulado para avaliar.")
    calibration = load_examples(request.examples, scheme, items) if request.examples else ()
    judge = file_judge(request.verdicts, data, scheme) if request.verdicts is not None else llm_judge(settings)
    if calibration and not judge.prompted:
        raise LectureRagError("--examples muda o prompt de um juiz LLM; um juiz file: não tem prompt.")
    base = config_from_settings(settings)
    variants = [("sem exemplos", base)]
    if calibration:
        variants.append(("com exemplos", replace(base, examples=calibration)))
    twice = {i.id for i in draw_order(items, request.sample_seed)[: request.repeat]}
    return JudgeEvalPlan(request, data, items, judge, scheme, variants, tuple(sorted(twice)))


def file_judge(path: Path, dataset: Dataset, scheme: LabelScheme) -> FileJudge:
    """The judge of a file of verdicts (``--judge-llm file:PATH``), matched to the data set's items."""
    path = path.expanduser()
    sha = file_sha(path) if path.is_file() else ""
    return FileJudge(f"file:{path.name}", sha, load_file_verdicts(path, dataset, scheme))


def run_judge_eval(
    runs: RunStore, plan: JudgeEvalPlan, *, batch: Engine = LOCAL, bars: ProgressBars | None = None
) -> JudgesReport:
    """Judge what each variant lacks (``batch`` judges, this process writes) and score it against people."""
    results = [_run_variant(runs, plan, label, config, batch, bars) for label, config in plan.variants]
    data, request = plan.data, plan.request
    sampled = DatasetSample(
        name=data.name,
        file=data.path.name,
        kind=data.kind,
        items=len(data.items),
        sample=len(plan.items),
        sample_seed=request.sample_seed if request.limit else None,
        bad_rows=len(data.problems),
        left_out=data.left_out,
    )
    return JudgesReport(dataset=sampled, judge=plan.judge.name, results=results)


def _run_variant(
    runs: RunStore, plan: JudgeEvalPlan, label: str, cfg: JudgeConfig, batch: Engine, bars: ProgressBars | None
) -> VariantResult:
    """One variant's stored evaluation (created or resumed), judged to the end, and its scores."""
    request = plan.request
    config = eval_config(plan.data, plan.judge, request.kinds, plan.scheme, cfg)
    run = (request.name + ("-exemplos" if cfg.examples else "")) if request.name else default_name(plan.data, config)
    with runs.running(run):
        runs.start(run, config)
        shown = bars(f"Julgando ({label})", len(plan.items)) if bars else nullcontext(None)
        with shown as step:
            stats = execute_judge_eval(
                runs, run, plan.items, plan.judge, kinds=request.kinds, scheme=plan.scheme, config=cfg,
                repeat=plan.twice, concurrency=request.concurrency, progress=step, batch=batch,
            )  # fmt: skip
    return _judged_variant(label, run, cfg, stats, runs.items(run), {i.id for i in plan.items}, plan.scheme)


def _judged_variant(
    variant: str,
    run: str,
    config: JudgeConfig,
    stats: EvalStats,
    items: list[RunItem],
    wanted: set[str],
    scheme: LabelScheme,
) -> VariantResult:
    """One variant's result: agreement and judge-vs-people numbers over the stored items of this sample."""
    chosen = [i for i in items if i.qid in wanted]
    manual = [manual_label(i) for i in chosen]
    report = agreement(manual, [auto_label(i) for i in chosen], scheme.codes, ordinal=scheme.ordinal_codes)
    ar = [judgment_score(i, "answer_relevance") for i in chosen]
    return VariantResult(
        variant=variant,
        run=run,
        examples=len(config.examples),
        stats=stats,
        agreement=report,
        judge_vs_people=judge_vs_people(chosen, scheme),
        ar_by_people_label=score_distribution(ar, manual) if any(s is not None for s in ar) else None,
    )  # fmt: skip


@record(slots=True)
class DatasetSample:
    """The labelled data set an evaluation of judges read, and the sample of it that was judged."""

    name: str
    file: str
    kind: str
    items: int
    sample: int
    sample_seed: int | None  # None: the whole data set (no --limit)
    bad_rows: int
    left_out: dict[str, int]


@record(slots=True)
class VariantResult:
    """One variant of the judge (without / with prompt examples) measured against people."""

    variant: str
    run: str
    examples: int
    stats: EvalStats
    agreement: AgreementReport
    judge_vs_people: JudgeVsPeople
    ar_by_people_label: dict[str, ScoreSummary] | None


@record(slots=True)
class JudgesReport:
    """What ``eval judges`` reports: the data set, the judge and one result per variant."""

    dataset: DatasetSample
    judge: str
    results: list[VariantResult]
