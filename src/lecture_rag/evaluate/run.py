"""Question-set runs: retrieve, answer and judge every question, resumably.

A run is identified by its name; its configuration snapshot (models, k, mode,
the answer and judge generation settings, prompt hashes, question file hash)
is stored with it, so two experiments can never be mixed under one name.
Work is saved per question, so a killed run resumes with only what is missing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lecture_rag.config import RetrievalMode
from lecture_rag.errors import LectureRagError
from lecture_rag.evaluate.judges import DEFAULT_CONFIG, KINDS, JudgeConfig, judge_answer, prompt_hashes
from lecture_rag.evaluate.labels import DEFAULT_SCHEME, LabelScheme
from lecture_rag.generate.answer import AnswerEngine, template_hashes
from lecture_rag.generate.llm import LLM
from lecture_rag.records import Answer, JudgeKind, Judgment, Question, QuestionMeta
from lecture_rag.store import RunStore

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
) -> dict[str, Any]:
    """What defines a run: a rerun with any of this changed is another experiment."""
    llm_cfg = engine.llm_settings
    return {
        "k": k,
        "mode": str(mode),
        "llm": engine.llm.name if engine.llm else "none (extrativa)",
        "judge_llm": judge_llm.name if judge_llm else "none",
        "judge_grammar": bool(judge_llm and judge_llm.applies_grammar),
        "judge_structured": judge_llm.structured if judge_llm else "none",
        "judges": list(kinds),
        "embedder": engine.retriever.embedder.name,
        "temperature": llm_cfg.temperature,
        "seed": llm_cfg.seed,
        "max_tokens": llm_cfg.max_tokens,
        "judge_temperature": judge_config.temperature,
        "judge_seed": judge_config.seed,
        "judge_max_tokens": judge_config.max_tokens,
        "judge_label_max_tokens": judge_config.label_max_tokens,
        "prompts": template_hashes(),
        "judge_prompts": prompt_hashes(scheme),
        "labels": list(scheme.codes),
        "label_scheme": scheme.to_config(),
        "questions_file": questions_path.name,
        "questions_sha": file_sha(questions_path),
    }


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


_Done = tuple[int, Question, Answer | None, Answer, list[Judgment]]


def execute_run(
    runs: RunStore,
    name: str,
    questions: Sequence[Question],
    engine: AnswerEngine,
    judge_llm: LLM | None,
    *,
    k: int,
    mode: RetrievalMode,
    concurrency: int = 1,
    progress: Callable[[int, int], None] | None = None,
    kinds: Sequence[JudgeKind] = KINDS,
    scheme: LabelScheme = DEFAULT_SCHEME,
    judge_config: JudgeConfig = DEFAULT_CONFIG,
) -> RunStats:
    """Answer and judge what is missing for each question of the run.

    Worker threads answer and judge; this thread alone writes, each
    question in its own transaction. With more than one worker the
    engine's retriever must be shareable between threads
    (:class:`~lecture_rag.retrieve.SharedRetriever`).
    """
    answered = runs.answered(name)
    judged = runs.judged(name)
    stats = RunStats(total=len(questions), workers=workers_for(concurrency, engine.llm, judge_llm))
    todo: list[tuple[int, Question, list[JudgeKind]]] = []
    for position, q in enumerate(questions):
        missing = [kind for kind in kinds if kind not in judged.get(q.id, set())]
        if q.id in answered and not missing:
            stats.skipped += 1
        else:
            todo.append((position, q, missing))
    done = stats.skipped
    if progress:
        progress(done, stats.total)
    existing = {item.qid: item.answer for item in runs.items(name)} if answered else {}

    def work(position: int, q: Question, missing: list[JudgeKind]) -> _Done:
        answer = existing.get(q.id)
        new_answer = None
        if answer is None:
            new_answer = answer = engine.answer(q.question, k=k, mode=mode)
        judgments = judge_answer(judge_llm, answer, missing, question=q.question, scheme=scheme, config=judge_config)
        return position, q, new_answer, answer, judgments

    with ThreadPoolExecutor(max_workers=stats.workers) as pool:
        futures = [pool.submit(work, *item) for item in todo]
        for future in as_completed(futures):
            position, q, new_answer, answer, judgments = future.result()
            if new_answer is not None:
                meta = QuestionMeta(q.answer, list(q.evidence), q.type)
                runs.save_item(name, q.id, position, q.question, meta, new_answer)
                stats.answered += 1
                if q.label:
                    runs.annotate(name, q.id, IMPORT_ANNOTATOR, scheme.resolve(q.label) or q.label)
            runs.save_judgments(name, q.id, judgments)
            stats.judged += 1
            stats.errors += int(bool(answer.error))
            done += 1
            if progress:
                progress(done, stats.total)
    return stats
