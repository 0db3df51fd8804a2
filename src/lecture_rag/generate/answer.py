"""Question → retrieved segments → grounded answer with validated references.

This is the one place that ties retrieval, prompting, the LLM and citation
checking together; the CLI, the evaluation runs and the web app all call
:meth:`AnswerEngine.answer`, so they cannot drift apart.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from jinja2 import Environment

from lecture_rag.config import LLMSettings, RetrievalMode, env_var
from lecture_rag.errors import LectureRagError, LLMError
from lecture_rag.generate import extractive
from lecture_rag.generate.citations import is_abstention, parse_citations, references, split_valid
from lecture_rag.generate.context import Packed, pack, pack_around_best
from lecture_rag.generate.language import NAMES, NOT_FOUND, detect_language
from lecture_rag.links import hhmmss
from lecture_rag.llm import LLM, ChatMessage, Request, chat
from lecture_rag.records import Answer, Hit, Timing
from lecture_rag.retrieve import Searcher, SearchRequest, SearchResult, parse_mode
from lecture_rag.templating import source_hashes, text_templates

TokenFn = Callable[[str], None]
HitsFn = Callable[[list[Hit]], None]
# Tokens kept free for the chat template's own markup and rounding in token counts.
_MARGIN = 48
# A question may take at most this share of the window; the rest is for the lectures.
_QUESTION_SHARE = 4


@lru_cache(maxsize=1)
def _templates() -> Environment:
    return text_templates("lecture_rag.generate", "prompts")


def template_hashes() -> dict[str, str]:
    """Hashes of the prompt templates, for run snapshots (a changed prompt is a changed run)."""
    return source_hashes(_templates(), ("system.j2", "user.j2"))


def build_messages(question: str, context: Sequence[Hit], language: str) -> list[ChatMessage]:
    """System and user messages for the answer prompt."""
    env = _templates()
    system = env.get_template("system.j2").render(
        language=language, language_name=NAMES.get(language, NAMES["pt"]), not_found=NOT_FOUND[language]
    )
    items = [
        {
            "title": h.title or h.video_id,
            "start": hhmmss(h.start),
            "end": hhmmss(h.end),
            "text": h.text,
        }
        for h in context
    ]
    user = env.get_template("user.j2").render(language=language, segments=items, question=question)
    return chat(system, user)


@dataclass(slots=True)
class AnswerEngine:
    """Answers questions with a retriever and an optional LLM (None = extractive)."""

    retriever: Searcher
    llm: LLM | None
    llm_settings: LLMSettings

    def answer(
        self,
        question: str,
        *,
        k: int = 10,
        mode: RetrievalMode | str = RetrievalMode.DENSE,
        course: str | None = None,
        video: str | None = None,
        on_hits: HitsFn | None = None,
        on_token: TokenFn | None = None,
    ) -> Answer:
        if not question or not question.strip():
            raise LectureRagError("A pergunta está vazia. Escreva uma pergunta sobre as aulas.")
        question = question.strip()
        language = detect_language(question)
        request = SearchRequest(question, k=k, mode=parse_mode(mode), course=course, video=video)
        found = self.retriever.search(request)
        if on_hits:
            on_hits(list(found.hits))
        if not found.hits:
            return Answer(question, language, [], [], NOT_FOUND[language], abstained=True)
        if self.llm is None:
            return self._extractive(question, language, found)
        return self._generate(question, language, found, on_token)

    def _extractive(self, question: str, language: str, found: SearchResult) -> Answer:
        hits = list(found.hits)
        context = hits[: extractive.MAX_SEGMENTS]
        quotes = self.extract(found)
        if quotes.abstains:
            return Answer(
                question,
                language,
                hits,
                context,
                NOT_FOUND[language],
                abstained=True,
                extractive=True,
                model="extractive",
            )
        extractive.cite_quoted(quotes.quotes, context)
        cited = [q.number for q in quotes.quotes]
        return Answer(
            question,
            language,
            hits,
            context,
            extractive.render(quotes.quotes, language),
            references=references(cited, context),
            citations=cited,
            extractive=True,
            model="extractive",
        )

    def extract(self, found: SearchResult) -> extractive.Extract:
        """The extractive quotes from a search's hits (the no-LLM answer; the fallback beside an LLM's)."""
        return extractive.extract(found, self.retriever.embedder)

    def _generate(self, question: str, language: str, found: SearchResult, on_token: TokenFn | None) -> Answer:
        assert self.llm is not None
        llm = self.llm
        max_tokens = min(self.llm_settings.max_tokens, llm.context_window // 4)
        started = time.perf_counter()
        try:
            question, packed = self._prompt(question, found, language, llm)
        except LLMError as exc:  # a server's tokenizer counts the prompt: one that is down fails here
            answer = Answer(question, language, list(found.hits), list(found.hits), "", model=llm.name)
            return self._failed(answer, exc, started, found)
        messages = build_messages(question, packed.hits, language)
        answer = Answer(
            question, language, list(found.hits), packed.hits, "", model=llm.name, dropped_segments=packed.dropped
        )
        try:
            stream = llm.stream(
                Request(
                    messages,
                    max_tokens=max_tokens,
                    temperature=self.llm_settings.temperature,
                    seed=self.llm_settings.seed,
                )
            )
            with stream:
                parts = []
                for delta in stream:
                    parts.append(delta)
                    if on_token:
                        on_token(delta)
                completion = stream.completion
        except LLMError as exc:
            return self._failed(answer, exc, started, found)
        answer.text = "".join(parts).strip()
        answer.timing = Timing(
            completion.first_token_s, completion.total_s, completion.prompt_tokens, completion.completion_tokens
        )
        _attach_citations(answer)
        if answer.no_citations or answer.invalid_citations or answer.off_language or not answer.text:
            self._offer_extractive(answer, found)
        return answer

    def _prompt(self, question: str, found: SearchResult, language: str, llm: LLM) -> tuple[str, Packed]:
        """The question as the model reads it (clipped) and the lectures packed for it."""
        question = _clip_question(question, llm, llm.context_window // _QUESTION_SHARE)
        packed = self.context_for(question, found, language, llm)
        if not packed.hits:
            raise LectureRagError(
                f"A janela de contexto do modelo ({llm.context_window} tokens) não comporta nenhum trecho. "
                f"Aumente {env_var('llm', 'context_window')} ou use um modelo com janela maior."
            )
        return question, packed

    def _failed(self, answer: Answer, exc: LLMError, started: float, found: SearchResult) -> Answer:
        """The LLM did not answer: say why, and offer the extractive answer beside."""
        answer.error = str(exc)
        answer.timing = Timing(total_s=time.perf_counter() - started)
        self._offer_extractive(answer, found)
        return answer

    def context_for(self, question: str, found: SearchResult, language: str, llm: LLM) -> Packed:
        """What ``llm`` reads of ``found``: the sentences around each window's best match, or whole windows.

        Either way no more than the model's window holds after the prompt's fixed
        parts (with ``question``) and the answer's ``max_tokens``. The best match
        is the search's own (its piece signals, the ones that chose ``cite_start``).
        """
        max_tokens = min(self.llm_settings.max_tokens, llm.context_window // 4)
        skeleton = build_messages(question, [], language)
        fixed = sum(llm.count_tokens(m["content"]) for m in skeleton)
        budget = llm.context_window - max_tokens - fixed - _MARGIN
        wanted = self.llm_settings.context_budget
        if wanted <= 0:
            return pack(found.hits, budget, llm.count_tokens)
        return pack_around_best(found.hits, found.signals, min(budget, wanted), llm.count_tokens)

    def _offer_extractive(self, answer: Answer, found: SearchResult) -> None:
        """Beside an LLM answer that failed or is flagged, the extractive one (citing the same numbers)."""
        quotes = self.extract(found)
        if quotes.abstains:
            answer.fallback = NOT_FOUND[answer.language]
            return
        # The fallback's [n] are the hits; copies, so the LLM's context (whole windows: the same objects)
        # keeps the seconds its references were built with.
        answer.hits = [replace(h) for h in answer.hits]
        extractive.cite_quoted(quotes.quotes, answer.hits)
        labels = extractive.FALLBACK_LABEL["failed" if answer.error else "flagged"]
        answer.fallback = extractive.render(quotes.quotes, answer.language, labels)


def _clip_question(question: str, llm: LLM, max_tokens: int) -> str:
    """Very long questions keep their start; the lectures need the window more."""
    if llm.count_tokens(question) <= max_tokens:
        return question
    words = question.split()
    lo, hi = 0, len(words)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if llm.count_tokens(" ".join(words[:mid])) <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo]) + " […]"


def _attach_citations(answer: Answer) -> None:
    """Validate [n] markers, build references, flag abstention and missing citations."""
    valid, invalid = split_valid(parse_citations(answer.text), len(answer.context))
    answer.citations = valid
    answer.invalid_citations = invalid
    answer.references = references(valid, answer.context)
    answer.abstained = is_abstention(answer.text)
    answer.no_citations = not valid and not answer.abstained and bool(answer.text)
    answer.off_language = bool(answer.text) and not answer.abstained and _language_of(answer.text) != answer.language


def _language_of(text: str) -> str:
    """The language an answer is written in (citations and times removed: they carry no language)."""
    return detect_language(re.sub(r"\[[^\]]*\]|\d+[:.,]?", " ", text))
