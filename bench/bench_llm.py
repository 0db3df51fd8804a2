"""LLM latency benchmark: first-token latency and decode rate for both backends.

    python -m bench.bench_llm                 # SmolLM2-135M, ~300-token prompt, 64 output tokens
    python -m bench.bench_llm --runs 5 --threads 1 2 --gguf /path/model.gguf
    python -m bench.bench_llm --context --store DIR   # whole windows vs packed context (issue 13)

``--context`` (with ``--store``, an indexed store of the four NURC lectures) compares, side by side in
one run through ``python -m llama_cpp.server`` and the answer engine, what the model reads: whole
windows vs the sentences around each window's best match (``[llm] context_budget``), at k=5 and
k=10: prompt tokens and time to first token (medians over ``--questions`` NURC questions); the
system-prompt cache (the same questions, each after a request with another system prompt, which
evicts the server's prefix cache, vs after another question); and, over every answerable NURC
question, the share whose evidence span overlaps what the model reads.

For each backend (in-process llama-cpp-python, and ``python -m llama_cpp.server``
through the OpenAI-compatible client) and each thread count it runs the same
prompts and prints median first-token latency (prompt processing), decode
tokens/s and total time; the in-process backend is also measured with the judges'
output grammar (``SCORE_GRAMMAR``), and the decode-rate ratio is printed. Each run uses a different lecture excerpt so the
prompt cache never hides prompt processing. The prompt is real Portuguese
lecture speech from ``../shared/data/nurc-sp`` (read-only, never copied).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.paths import NURC, QUESTIONS
from tests.support.servers import llama_server

from lecture_rag.config import CONTEXT_BUDGET, load_settings
from lecture_rag.embed import make_embedder
from lecture_rag.evaluate.judges import SCORE_GRAMMAR
from lecture_rag.evaluate.questions import load_questions
from lecture_rag.generate.answer import AnswerEngine
from lecture_rag.llm import (
    LLM,
    ChatMessage,
    Completion,
    LlamaCppLLM,
    OpenAICompatibleLLM,
    Request,
    bundled_gguf_or_error,
)
from lecture_rag.retrieve import Retriever, SearchRequest
from lecture_rag.retrieve.rerank import make_reranker
from lecture_rag.store import Store

TRANSCRIPT = NURC / "transcripts" / "sentences_SP_EF_405.csv"


@dataclass
class Row:
    backend: str
    threads: int
    runs: list[Completion]

    def median(self, attr: str) -> float:
        return statistics.median(float(getattr(c, attr)) for c in self.runs)


def lecture_lines() -> list[str]:
    """The lecture's sentence-level lines (the file holds the lecture twice; the first pass suffices)."""
    if not TRANSCRIPT.is_file():
        raise SystemExit(f"missing benchmark data: {TRANSCRIPT}")
    with TRANSCRIPT.open(encoding="utf-8") as handle:
        return [row["text"].strip() for row in csv.DictReader(handle, delimiter=";") if row["text"].strip()]


def make_prompts(llm: LLM, runs: int, prompt_tokens: int) -> list[list[ChatMessage]]:
    """One ~prompt_tokens prompt per run, each from a different part of the lecture."""
    lines = lecture_lines()
    prompts: list[list[ChatMessage]] = []
    start = 0
    for _ in range(runs):
        excerpt: list[str] = []
        while llm.count_tokens(" ".join(excerpt)) < prompt_tokens - 40 and start < len(lines):
            excerpt.append(lines[start])
            start += 1
        user = f"Trecho da aula:\n{' '.join(excerpt)}\n\nResuma o trecho em tópicos, em português."
        prompts.append(
            [
                {"role": "system", "content": "Você é um assistente de estudos."},
                {"role": "user", "content": user},
            ]
        )
    return prompts


def measure(
    llm: LLM, prompts: list[list[ChatMessage]], max_tokens: int, grammar: str | None = None
) -> list[Completion]:
    llm.complete(Request([{"role": "user", "content": "Olá"}], max_tokens=4))  # warm-up: load and first eval
    return [llm.complete(Request(p, max_tokens=max_tokens, grammar=grammar)) for p in prompts]


@contextmanager
def backend(kind: str, model: Path, threads: int, n_ctx: int) -> Iterator[LLM]:
    if kind == "in-process":
        yield LlamaCppLLM(model, context_window=n_ctx, threads=threads)
        return
    with (
        llama_server(model, n_ctx=n_ctx, threads=threads) as url,
        OpenAICompatibleLLM(url, timeout=300) as llm,
    ):
        yield llm


def print_table(rows: list[Row], model: Path, prompt_tokens: int) -> None:
    print(f"\nmodel: {model.name}   prompt ≈ {prompt_tokens} tokens   (medians over {len(rows[0].runs)} runs)")
    header = f"{'backend':<22}{'threads':>8}{'prompt tok':>11}{'out tok':>9}{'first token s':>15}{'decode tok/s':>14}{'total s':>9}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.backend:<22}{row.threads:>8}{row.median('prompt_tokens'):>11.0f}"
            f"{row.median('completion_tokens'):>9.0f}{row.median('first_token_s'):>15.3f}"
            f"{row.median('tokens_per_s'):>14.1f}{row.median('total_s'):>9.2f}"
        )
    print("(llama_cpp.server gives no usage when streaming: its prompt tokens exclude chat-template tokens)")


def evidence_share(engine: AnswerEngine, llm: LLM, k: int, budgets: Sequence[int]) -> dict[int, float]:
    """Share of answerable NURC questions whose evidence overlaps the context, per context budget (0: whole)."""
    held = dict.fromkeys(budgets, 0)
    answerable = [q for q in load_questions(QUESTIONS) if q.answerable]
    for q in answerable:
        found = engine.retriever.search(SearchRequest(q.question, k=k))
        for budget in budgets:
            engine.llm_settings.context_budget = budget
            context = engine.context_for(q.question, found, "pt", llm).hits
            if any(
                h.video_id == e.video_id and min(h.end, e.end) > max(h.start, e.start)
                for h in context
                for e in q.evidence
            ):
                held[budget] += 1
    return {b: n / len(answerable) for b, n in held.items()}


def context_comparison(store: Path, model: Path, n_questions: int, budget: int) -> None:
    settings = load_settings(store)
    retriever = Retriever.open(
        Store(store), make_embedder(settings.embedder), settings, reranker=make_reranker(settings)
    )
    questions = [q for q in load_questions(QUESTIONS) if q.answerable][:: max(1, 62 // n_questions)][:n_questions]
    cfg = settings.llm.model_copy(update={"max_tokens": 8, "context_window": 8192})
    with (
        llama_server(model, n_ctx=8192, threads=2) as url,
        OpenAICompatibleLLM(url, timeout=600, context_window=8192) as llm,
    ):
        engine = AnswerEngine(retriever, llm, cfg)
        buster: list[ChatMessage] = [{"role": "system", "content": "Outra tarefa."}, {"role": "user", "content": "Oi"}]
        llm.complete(Request(buster, max_tokens=1))  # warm-up
        print(f"\nmodel {model.name} via llama_cpp.server, n_ctx 8192, {len(questions)} questions, medians")
        print(f"{'k':>3}{'context':>18}{'prompt tok':>12}{'first token s':>15}{'vs whole':>10}")
        for k in (5, 10):
            whole_ttft = 0.0
            for label, b in (("whole windows", 0), (f"packed {budget}", budget)):
                cfg.context_budget = b
                answers = [engine.answer(q.question, k=k) for q in questions]
                tok = statistics.median(a.timing.prompt_tokens for a in answers)
                ttft = statistics.median(a.timing.first_token_s or 0.0 for a in answers)
                whole_ttft = whole_ttft or ttft
                print(f"{k:>3}{label:>18}{tok:>12.0f}{ttft:>15.2f}{ttft / whole_ttft:>9.2f}x")
        cfg.context_budget = budget
        cold, warm = [], []
        for q in questions:
            llm.complete(Request(buster, max_tokens=1))
            cold.append(engine.answer(q.question, k=5).timing.first_token_s or 0.0)
        engine.answer(questions[-1].question, k=5)
        for q in questions:  # each right after another question: only the shared prefix is cached
            warm.append(engine.answer(q.question, k=5).timing.first_token_s or 0.0)
        c, w = statistics.median(cold), statistics.median(warm)
        print(
            f"system prompt cache, packed k=5: first token {c:.2f}s after another system prompt, "
            f"{w:.2f}s after a question ({w / c:.2f}x)"
        )
        for k in (5, 10):
            shares = evidence_share(engine, llm, k, [0, budget // 2, budget, budget * 2])
            whole = shares[0]
            cells = "  ".join(f"{b or 'whole'}: {v:.1%} ({v / whole:.0%} of whole)" for b, v in shares.items())
            print(f"evidence in context, k={k}: {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path, default=None, help="model file (default: bundled SmolLM2-135M)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--prompt-tokens", type=int, default=300)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, nargs="+", default=[2])
    parser.add_argument("--backends", nargs="+", default=["in-process", "llama_cpp.server"])
    parser.add_argument("--context", action="store_true", help="whole windows vs packed context (needs --store)")
    parser.add_argument("--store", type=Path, default=None, help="indexed store of the four NURC lectures")
    parser.add_argument("--questions", type=int, default=6, help="NURC questions timed in --context")
    parser.add_argument("--budget", type=int, default=CONTEXT_BUDGET, help="packed context budget (tokens)")
    args = parser.parse_args()
    model = args.gguf or bundled_gguf_or_error()
    if args.context:
        if args.store is None:
            parser.error("--context needs --store DIR (lecture-rag ingest ../shared/data/nurc-sp/transcripts)")
        context_comparison(args.store, model, args.questions, args.budget)
        return
    rows: list[Row] = []
    for kind in args.backends:
        for threads in args.threads:
            with backend(kind, model, threads, n_ctx=2048) as llm:
                prompts = make_prompts(llm, args.runs, args.prompt_tokens)
                rows.append(Row(kind, threads, measure(llm, prompts, args.max_tokens)))
                if kind == "in-process":
                    held = measure(llm, prompts, args.max_tokens, grammar=SCORE_GRAMMAR)
                    rows.append(Row(f"{kind} + grammar", threads, held))
                print(f"done: {kind} threads={threads}", file=sys.stderr)
    print_table(rows, model, args.prompt_tokens)
    by_name = {(r.backend, r.threads): r for r in rows}
    for threads in args.threads:
        free, held_row = by_name.get(("in-process", threads)), by_name.get(("in-process + grammar", threads))
        if free and held_row:
            ratio = held_row.median("tokens_per_s") / free.median("tokens_per_s")
            print(f"grammar / free decode rate, {threads} thread(s): {ratio:.2f}x")


if __name__ == "__main__":
    main()
