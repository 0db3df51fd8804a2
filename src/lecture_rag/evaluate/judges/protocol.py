"""One protocol for whatever judges labelled answers: an LLM behind the judges' prompts, or a file of verdicts.

Why: ``eval judges`` scores both the same way (agreement with people, bias,
cost), and they differ only in what the judge says of itself: the kinds of
judgment it can give (:meth:`Judge.kinds`), whether it takes calls on
several threads (:attr:`Judge.parallel_safe`), whether a second verdict can
differ (:attr:`Judge.repeatable`, the self-consistency repeat), whether
prompts shape it (:attr:`Judge.prompted`, ``--examples``), what identifies
it in the evaluation's configuration (:meth:`Judge.snapshot`) and how a
batch engine's worker builds one like it (:attr:`Judge.setup`). Callers ask
the judge; they never check its class.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from lecture_rag.batch import LocalOnly
from lecture_rag.config import JudgeLLMSettings, env_var
from lecture_rag.errors import LectureRagError
from lecture_rag.evaluate.judges import JUDGE_ENV_PREFIX, JudgeConfig, judge_answer, prompt_hashes
from lecture_rag.evaluate.labels import LabelScheme
from lecture_rag.llm import LLM, make_llm
from lecture_rag.records import JudgeKind, Judgment

if TYPE_CHECKING:  # the data sets import the judges package: only the annotations name them
    from lecture_rag.evaluate.judgesets import LabelledAnswer

NO_FILE_VERDICT = "o arquivo de vereditos não tem veredito para este item (ou julga outra resposta)"
NO_JUDGE = (
    "Nenhum juiz para avaliar: passe --judge-llm openai|gguf:CAMINHO|file:VEREDITOS.tsv ou configure "
    f"{env_var('judge_llm', 'backend')}."
)


class Judge(Protocol):
    """What judges the labelled answers of an evaluation, one item at a time."""

    @property
    def name(self) -> str:
        """What reports call the judge: the model, or ``file:NAME``."""
        ...

    @property
    def parallel_safe(self) -> bool:
        """Whether items may be judged on several threads of this process at once."""
        ...

    @property
    def repeatable(self) -> bool:
        """Whether judging an item again can say something else (so the self-consistency repeat is worth doing)."""
        ...

    @property
    def prompted(self) -> bool:
        """Whether the judges' prompts, and so ``--examples``, shape its verdicts."""
        ...

    @property
    def setup(self) -> Callable[[int], Judge]:
        """How a batch engine's worker builds a judge like this one (a value that pickles)."""
        ...

    def kinds(self, asked: Sequence[JudgeKind]) -> list[JudgeKind]:
        """The kinds of judgment it gives when ``asked`` for these."""
        ...

    def snapshot(self, kinds: Sequence[JudgeKind], scheme: LabelScheme, config: JudgeConfig) -> dict[str, Any]:
        """What identifies it in an evaluation's configuration (a change is another evaluation)."""
        ...

    def judge(
        self, item: LabelledAnswer, kinds: Sequence[JudgeKind], scheme: LabelScheme, config: JudgeConfig
    ) -> list[Judgment]:
        """Its judgments of one item, of the ``kinds`` still missing."""
        ...


@dataclass(frozen=True, slots=True)
class LLMJudge:
    """The judges' prompts run by an LLM; ``settings`` (the ones it was made from) let a worker build its own."""

    llm: LLM
    settings: JudgeLLMSettings | None = None
    repeatable: ClassVar[bool] = True
    prompted: ClassVar[bool] = True

    @property
    def name(self) -> str:
        return self.llm.name

    @property
    def parallel_safe(self) -> bool:
        return self.llm.parallel_safe

    @property
    def setup(self) -> Callable[[int], Judge]:
        if self.settings is None:
            return LocalOnly("Um juiz em outros processos precisa das configurações do LLM juiz ([judge_llm]).")
        return partial(llm_judge, self.settings)

    def kinds(self, asked: Sequence[JudgeKind]) -> list[JudgeKind]:
        return list(asked)

    def snapshot(self, kinds: Sequence[JudgeKind], scheme: LabelScheme, config: JudgeConfig) -> dict[str, Any]:
        return {
            "judge_llm": self.name,
            "judge_file_sha": None,
            "judge_structured": self.llm.structured,
            "judges": self.kinds(kinds),
            "judge_temperature": config.temperature,
            "judge_seed": config.seed,
            "judge_max_tokens": config.max_tokens,
            "judge_label_max_tokens": config.label_max_tokens,
            "judge_prompts": prompt_hashes(scheme),
        }

    def judge(
        self, item: LabelledAnswer, kinds: Sequence[JudgeKind], scheme: LabelScheme, config: JudgeConfig
    ) -> list[Judgment]:
        return judge_answer(
            self.llm, item.answer, kinds, question=item.question, scheme=scheme, config=config,
            references=item.references,
        )  # fmt: skip


def llm_judge(settings: JudgeLLMSettings, cpus: int = 0) -> LLMJudge:
    """The LLM judge ``settings`` ask for (``LECTURE_RAG_JUDGE_LLM_*`` in its messages); no judge is an error."""
    llm = make_llm(settings, env_prefix=JUDGE_ENV_PREFIX)
    if llm is None:
        raise LectureRagError(NO_JUDGE)
    return LLMJudge(llm, settings)


@dataclass(frozen=True, slots=True)
class FileJudge:
    """Verdicts computed elsewhere, by item id (see :func:`~lecture_rag.evaluate.judgesets.load_file_verdicts`).

    It gives the automated label only, the same one every time, without a
    prompt; a worker gets the verdicts themselves (they pickle).
    """

    name: str
    sha: str
    verdicts: Mapping[str, Judgment]
    parallel_safe: ClassVar[bool] = False  # a look-up: nothing to gain from threads
    repeatable: ClassVar[bool] = False
    prompted: ClassVar[bool] = False

    @property
    def setup(self) -> Callable[[int], Judge]:
        return self.built

    def built(self, cpus: int) -> FileJudge:
        """A worker's judge: this one, verdicts and all."""
        return self

    def verdict(self, item_id: str) -> Judgment:
        found = self.verdicts.get(item_id)
        return found or Judgment("auto_label", parsed=False, error=NO_FILE_VERDICT, model=self.name)

    def kinds(self, asked: Sequence[JudgeKind]) -> list[JudgeKind]:
        return ["auto_label"]

    def snapshot(self, kinds: Sequence[JudgeKind], scheme: LabelScheme, config: JudgeConfig) -> dict[str, Any]:
        return {
            "judge_llm": self.name,
            "judge_file_sha": self.sha,
            "judge_structured": None,
            "judges": self.kinds(kinds),
            "judge_temperature": None,
            "judge_seed": None,
            "judge_max_tokens": None,
            "judge_label_max_tokens": None,
            "judge_prompts": None,
        }

    def judge(
        self, item: LabelledAnswer, kinds: Sequence[JudgeKind], scheme: LabelScheme, config: JudgeConfig
    ) -> list[Judgment]:
        return [self.verdict(item.id)] if "auto_label" in kinds else []
