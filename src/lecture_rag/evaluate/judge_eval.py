"""Judges measured against people: ``lecture-rag eval judges`` runs a judge over a labelled data set.

An evaluation is stored as a run (:class:`~lecture_rag.store.RunStore`): one
item per labelled answer, the people's label as the annotation of
:data:`PEOPLE`, the judge's verdicts as judgments, a second verdict on the
items judged twice under ``auto_label#2``. So it resumes like ``run`` (each
item in its own transaction; a killed evaluation redoes only what is
missing), and ``agreement``, ``report`` and the web pages read it like any
run. A judge is an LLM, or a file of verdicts computed elsewhere
(``file:PATH``), scored the same way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass

from pydantic.dataclasses import dataclass as record

from lecture_rag.evaluate.agreement import AgreementReport, ScoreSummary
from lecture_rag.evaluate.judges import JudgeConfig, judge_answer, prompt_hashes
from lecture_rag.evaluate.judgesets import Dataset, LabelledAnswer
from lecture_rag.evaluate.labels import LabelScheme
from lecture_rag.evaluate.run import file_sha, workers_for
from lecture_rag.evaluate.summary import REFERENCE_SEPARATOR, REPEAT, JudgeVsPeople
from lecture_rag.generate.llm import LLM
from lecture_rag.records import JUDGES_KIND, JudgeKind, Judgment, QuestionMeta, RunConfig
from lecture_rag.store import RunStore
from lecture_rag.wire import to_data

PEOPLE = "pessoas"
NO_FILE_VERDICT = "o arquivo de vereditos não tem veredito para este item (ou julga outra resposta)"


@dataclass(frozen=True, slots=True)
class FileJudge:
    """Verdicts computed elsewhere, by item id (see :func:`~lecture_rag.evaluate.judgesets.load_file_verdicts`)."""

    name: str
    sha: str
    verdicts: Mapping[str, Judgment]

    def verdict(self, item_id: str) -> Judgment:
        found = self.verdicts.get(item_id)
        return found or Judgment("auto_label", parsed=False, error=NO_FILE_VERDICT, model=self.name)


Judge = LLM | FileJudge


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
    is_file = isinstance(judge, FileJudge)
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
        judge_llm=judge.name,
        judge_file_sha=judge.sha if isinstance(judge, FileJudge) else None,
        judge_structured=None if isinstance(judge, FileJudge) else judge.structured,
        judges=["auto_label"] if is_file else list(kinds),
        judge_temperature=None if is_file else config.temperature,
        judge_seed=None if is_file else config.seed,
        judge_max_tokens=None if is_file else config.max_tokens,
        judge_label_max_tokens=None if is_file else config.label_max_tokens,
        judge_prompts=None if is_file else prompt_hashes(scheme),
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


def _work(
    judge: Judge,
    item: LabelledAnswer,
    kinds: Sequence[JudgeKind],
    scheme: LabelScheme,
    config: JudgeConfig,
) -> list[Judgment]:
    if isinstance(judge, FileJudge):
        return [judge.verdict(item.id)] if "auto_label" in kinds else []
    return judge_answer(
        judge, item.answer, kinds, question=item.question, scheme=scheme, config=config, references=item.references
    )


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
    progress: Callable[[int, int], None] | None = None,
) -> EvalStats:
    """Judge what is missing: every item once, the items in ``repeat`` (ids) a second time.

    Worker threads judge; this thread alone writes, one item per
    transaction, so a killed evaluation loses at most the items in flight.
    """
    kinds = ["auto_label"] if isinstance(judge, FileJudge) else list(kinds)
    stored = runs.answered(name)
    judged = runs.judged(name)
    again = set(repeat) if not isinstance(judge, FileJudge) else set()
    tasks: list[tuple[LabelledAnswer, list[JudgeKind], str]] = []
    for item in items:
        have = judged.get(item.id, set())
        first = [k for k in kinds if k not in have]
        second = [k for k in kinds if item.id in again and k + REPEAT not in have]
        if item.id not in stored or first:
            tasks.append((item, first, ""))
        if second:
            tasks.append((item, second, REPEAT))
    workers = 1 if isinstance(judge, FileJudge) else workers_for(concurrency, judge)
    stats = EvalStats(total=len(items) + len(again & {i.id for i in items}), workers=workers)
    done = stats.total - len(tasks)
    stats.skipped = done
    if progress:
        progress(done, stats.total)
    saved = set(stored)

    def work(item: LabelledAnswer, todo: list[JudgeKind], suffix: str) -> tuple[LabelledAnswer, list[Judgment], str]:
        return item, _work(judge, item, todo, scheme, config), suffix

    with ThreadPoolExecutor(max_workers=stats.workers) as pool:
        futures = [pool.submit(work, *task) for task in tasks]
        for future in as_completed(futures):
            item, judgments, suffix = future.result()
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
