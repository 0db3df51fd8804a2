"""Question-set runs: retrieve, answer and judge every question, resumably.

A run is identified by its name; its configuration snapshot (models, k, mode,
prompt hashes, question file hash) is stored with it, so two experiments can
never be mixed under one name. Work is saved per question, so a killed run
resumes with only what is missing.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lecture_rag.errors import LectureRagError
from lecture_rag.evaluate import judges
from lecture_rag.evaluate.labels import DEFAULT_SCHEME, LabelScheme
from lecture_rag.evaluate.questions import Question
from lecture_rag.evaluate.runs import RunStore
from lecture_rag.generate.answer import AnswerEngine, template_hashes
from lecture_rag.generate.llm import LLM, OpenAICompatibleLLM
from lecture_rag.records import Hit
from lecture_rag.report.serialize import answer_from_dict, answer_to_dict

JUDGE_KINDS = ("answer_relevance", "context_relevance", "groundedness", "auto_label")
# Short names for ``run --judges``; the seed's record needs only ``ar`` and ``label``.
JUDGE_ALIASES = {"ar": "answer_relevance", "cr": "context_relevance", "g": "groundedness", "label": "auto_label"}


def parse_judge_kinds(spec: str) -> tuple[str, ...]:
    """``ar,label`` → the judges to run, in the canonical order; unknown names are a clear error."""
    wanted = {JUDGE_ALIASES.get(part.strip().lower(), part.strip().lower()) for part in spec.split(",") if part.strip()}
    unknown = sorted(wanted - set(JUDGE_KINDS))
    if unknown or not wanted:
        names = ", ".join(f"{short} ({full})" for short, full in JUDGE_ALIASES.items())
        raise LectureRagError(f"juiz desconhecido: {', '.join(unknown) or '(vazio)'}. Use uma lista de: {names}.")
    return tuple(kind for kind in JUDGE_KINDS if kind in wanted)


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
    mode: str,
    questions_path: Path,
    kinds: Sequence[str] = JUDGE_KINDS,
    scheme: LabelScheme = DEFAULT_SCHEME,
) -> dict[str, Any]:
    """What defines a run: a rerun with any of this changed is another experiment."""
    llm_cfg = engine.llm_settings
    return {
        "k": k,
        "mode": mode,
        "llm": engine.llm.name if engine.llm else "none (extrativa)",
        "judge_llm": judge_llm.name if judge_llm else "none",
        "judge_grammar": bool(judge_llm and judge_llm.applies_grammar),
        "judges": list(kinds),
        "embedder": engine.retriever.embedder.name,
        "temperature": llm_cfg.temperature,
        "seed": llm_cfg.seed,
        "max_tokens": llm_cfg.max_tokens,
        "prompts": template_hashes(),
        "judge_prompts": judges.prompt_hashes(scheme),
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


class _LockedRetriever:
    """Serialises retrieval (SQLite connection, embedder) between worker threads."""

    def __init__(self, retriever: Any) -> None:
        self._retriever = retriever
        self._lock = threading.Lock()
        self.embedder = retriever.embedder

    def search(self, *args: Any, **kwargs: Any) -> list[Hit]:
        with self._lock:
            return list(self._retriever.search(*args, **kwargs))


def _judge(
    judge_llm: LLM | None,
    question: Question,
    answer: dict[str, Any],
    kinds: Sequence[str],
    scheme: LabelScheme = DEFAULT_SCHEME,
) -> list[dict[str, Any]]:
    ans = answer_from_dict(answer)
    out = []
    for kind in kinds:
        if kind == "answer_relevance":
            j = judges.answer_relevance(judge_llm, question.question, ans.text)
        elif kind == "context_relevance":
            j = judges.context_relevance(judge_llm, question.question, ans.hits)
        elif kind == "groundedness":
            j = judges.groundedness(judge_llm, ans.text, ans.context, language=ans.language)
        else:
            j = judges.auto_label(judge_llm, question.question, ans.text, ans.context, scheme)
        out.append(j.to_dict())
    return out


def execute_run(
    runs: RunStore,
    name: str,
    questions: Sequence[Question],
    engine: AnswerEngine,
    judge_llm: LLM | None,
    *,
    k: int,
    mode: str,
    concurrency: int = 1,
    progress: Callable[[int, int], None] | None = None,
    kinds: Sequence[str] = JUDGE_KINDS,
    scheme: LabelScheme = DEFAULT_SCHEME,
) -> RunStats:
    """Answer and judge what is missing for each question of the run."""
    answered = runs.answered(name)
    judged = runs.judged(name)
    stats = RunStats(total=len(questions))
    todo: list[tuple[int, Question, list[str]]] = []
    for position, q in enumerate(questions):
        missing = [kind for kind in kinds if kind not in judged.get(q.id, set())]
        if q.id in answered and not missing:
            stats.skipped += 1
        else:
            todo.append((position, q, missing))
    done = stats.skipped
    if progress:
        progress(done, stats.total)
    http = isinstance(engine.llm, OpenAICompatibleLLM) and (
        judge_llm is None or isinstance(judge_llm, OpenAICompatibleLLM)
    )
    workers = max(1, concurrency if http else 1)
    worker_engine = AnswerEngine(_LockedRetriever(engine.retriever), engine.llm, engine.llm_settings)
    existing = {item.qid: item.answer for item in runs.items(name) if item.qid in answered} if answered else {}

    def work(
        position: int, q: Question, missing: list[str]
    ) -> tuple[int, Question, dict[str, Any] | None, dict[str, Any], list[dict[str, Any]]]:
        new_answer = None
        answer = existing.get(q.id)
        if answer is None:
            new_answer = answer_to_dict(worker_engine.answer(q.question, k=k, mode=mode))
            answer = new_answer
        return position, q, new_answer, answer, _judge(judge_llm, q, answer, missing, scheme)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(work, *item) for item in todo]
        for future in as_completed(futures):
            position, q, new_answer, answer, judgments = future.result()
            if new_answer is not None:
                meta = {"answer": q.answer, "evidence": [asdict(e) for e in q.evidence], "type": q.type}
                runs.save_item(name, q.id, position, q.question, meta, new_answer)
                stats.answered += 1
                if q.label:
                    runs.annotate(name, q.id, IMPORT_ANNOTATOR, scheme.resolve(q.label) or q.label)
            runs.save_judgments(name, q.id, judgments)
            stats.judged += 1
            stats.errors += int(bool(answer.get("error")))
            done += 1
            if progress:
                progress(done, stats.total)
    return stats
