"""The no-LLM answer: the sentences of the top windows that answer, each at its exact second.

No instruction-following model that writes usable Portuguese ships offline,
so without a configured LLM the system still answers honestly: it quotes the
lecture sentences that best answer the question, each with its citation and
the second it is said at, and says it is extractive.

How sentences are chosen (no model beyond the retrieval's E5 and a fitted linear scorer):

* candidates are the timed pieces (caption cues or transcript utterances,
  :meth:`~lecture_rag.records.Segment.pieces`) of the top windows; a piece
  longer than :data:`SPAN_WORDS` is cut into about equal spans (NURC
  transcripts, human and ASR, are unpunctuated utterances of up to 50 words);
* each is scored by the sentence model
  (:mod:`lecture_rag.retrieve.sentence_model`: its passage's E5 cosine, its
  share of the question's rare words, its window's rank, its place relative to
  the window's cited second..., weights fitted on leave-one-lecture-out folds);
  before it (``fitted=False``) three orderings were fused by reciprocal rank;
* only sentences of the best-ranked lecture, unless another lecture's is
  closer to the question than all of them, and never a fragment shorter than
  a clause (:mod:`lecture_rag.generate.sentences`);
* the best span leads, with the :data:`FOLLOW` spans after it in its window
  (what follows the sentence that answers most often completes it); then the
  next best ones while the answer stays within :data:`MAX_WORDS` words,
  skipping repeats (overlapping windows share sentences). A window is quoted
  once: from its best sentence on (the following spans join it when chosen),
  so the quote, its ``[n]`` and every link to it share one second, the start
  of the sentence that answers (:func:`cite_quoted` writes it to the hits).

When the search says the lectures probably do not hold the answer (a
logistic decision on several signals, :mod:`lecture_rag.generate.abstain`,
fitted on held-out folds; before it, the best candidate's E5 cosine below
:data:`ABSTAIN_BELOW`), the answer says so instead of quoting noise.

Why no sentence is embedded here: every vector comes from the index build
(the search's :class:`~lecture_rag.retrieve.SearchResult` carries the
question's and the passages' cosines), so an answer costs a search plus
microseconds. Embedding the 24 shortlisted sentences per question took 87%
of ``ask``'s time (0.8 s of CPU per question on 2 cores) and bought no answer
recall on the NURC set (0.388 with it, 0.386 without: docs/benchmarks.md);
embedding every sentence at index time instead would add about as many
tokens to the index as the passages do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from lecture_rag.embed import Embedder
from lecture_rag.generate.abstain import abstain_model, signals
from lecture_rag.generate.sentences import MIN_CLAUSE_WORDS, fluent, focus, join_short
from lecture_rag.links import hhmmss
from lecture_rag.records import Hit, Piece
from lecture_rag.retrieve import SearchResult
from lecture_rag.retrieve.cite import PieceSignals
from lecture_rag.retrieve.rerank import rank_fusion
from lecture_rag.retrieve.sentence_model import SentenceModel, sentence_model, span_features

#: A piece longer than this (an unpunctuated transcript utterance) is cut into about equal spans of at most
#: this many words (a clause's length; chosen in CV by bench_heldout: 30 before the sentence model).
SPAN_WORDS = 15
#: Quote pieces without hesitations and immediate repeats (:func:`~lecture_rag.generate.sentences.fluent`).
#: Off: measured in CV by ``python -m bench.bench_answers`` it bought no recall at the same 60 words
#: (human .389 -> .395, ASR .289 -> .269, both well inside the intervals; wav2vec2 ASR has few hesitations).
CLEAN = False
#: Spans right after the best one that lead the answer with it (chosen in CV by bench_heldout).
FOLLOW = 3
#: The answer quotes at most this many words (issue 22: an answer, not a page; it was 75).
MAX_WORDS = 60
#: Windows whose pieces are candidates.
MAX_SEGMENTS = 5
#: Candidates fused a second time (the best of the first fusion); the rest are not quoted.
SHORTLIST = 24
#: Weight of the passage cosine in the second fusion: it stands for the candidate's own cosine too.
SEMANTIC_WEIGHT = 2.0
#: Reciprocal-rank constant of the fusion (small: over a few dozen candidates the top of each ordering counts).
RRF_K = 10
#: Below this E5 cosine between the question and its best candidate, abstain. Measured on the NURC set
#: with multilingual-e5-small (README): abstains on 5/62 answerable and 4/9 unanswerable questions
#: (3/62 and 4/9 when each shortlisted sentence was embedded per question).
#: Cosine scales differ between models, so it applies to E5 embedders only.
ABSTAIN_BELOW = 0.84
#: Two candidates sharing this share of their words are one (overlapping windows repeat sentences).
REPEAT_SHARE = 0.6

LABEL = {
    "pt": "Resposta extrativa (nenhum LLM configurado): trechos das aulas mais próximos da pergunta.",
    "en": "Extractive answer (no LLM configured): the lecture passages closest to the question.",
    "es": "Respuesta extractiva (ningún LLM configurado): fragmentos más cercanos a la pregunta.",
}
#: Beside an LLM answer: the LLM is configured, so say what happened to it (it failed, or was flagged).
FALLBACK_LABEL = {
    "failed": {
        "pt": "Resposta extrativa (o LLM não respondeu; trechos das aulas):",
        "en": "Extractive answer (the LLM did not answer; lecture passages):",
        "es": "Respuesta extractiva (el LLM no respondió; fragmentos de las clases):",
    },
    "flagged": {
        "pt": "Resposta extrativa (trechos das aulas mais próximos da pergunta):",
        "en": "Extractive answer (the lecture passages closest to the question):",
        "es": "Respuesta extractiva (fragmentos de las clases más cercanos a la pregunta):",
    },
}


@dataclass(slots=True)
class Candidate:
    """One quotable span: the window it comes from (``number``: its citation), its place and its scores."""

    number: int
    video_id: str
    order: int  # position of the span within its window, for merging neighbours
    start: float
    end: float
    text: str
    semantic: float
    lexical: float
    score: float = 0.0

    @property
    def cosine(self) -> float:
        """Its E5 cosine to the question: its passage's (the index build's vectors; no sentence is embedded)."""
        return self.semantic


@dataclass(slots=True)
class Quote:
    """What the answer quotes: one span (or merged neighbours) of window ``number``, said at ``start``."""

    number: int
    start: float
    text: str


@dataclass(slots=True)
class Extract:
    """The extractive answer's parts; ``best_cosine`` is the abstention signal (None: nothing to quote)."""

    quotes: list[Quote]
    best_cosine: float | None
    abstain_below: float | None = None
    #: P(the lectures answer) from :mod:`lecture_rag.generate.abstain`, and the probability it abstains below.
    answer_probability: float | None = None
    answer_threshold: float = 0.5

    @property
    def abstains(self) -> bool:
        if self.best_cosine is None:
            return True
        if self.answer_probability is not None:
            return self.answer_probability < self.answer_threshold
        return self.abstain_below is not None and self.best_cosine < self.abstain_below


def candidates(
    hits: Sequence[Hit],
    signals: Sequence[PieceSignals],
    max_segments: int = MAX_SEGMENTS,
    min_words: int = MIN_CLAUSE_WORDS,
    span_words: int = SPAN_WORDS,
    clean: bool = CLEAN,
) -> list[Candidate]:
    """Spans of the top windows with their cheap signals: long pieces cut (:func:`_spans`), then fragments
    joined into clauses (:func:`join_short`), so a span made of joined pieces still starts at a piece's second.
    ``clean``: each piece's text without hesitations and immediate repeats first (:func:`fluent`)."""
    out: list[Candidate] = []
    for number, (hit, sig) in enumerate(zip(hits[:max_segments], signals, strict=False), start=1):
        cut = [
            (span, s, x)
            for piece, s, x in zip(sig.pieces, sig.semantic, sig.lexical, strict=True)
            for span in _spans(_cleaned(piece) if clean else piece, span_words)
            if span.text
        ]
        pieces, semantic, lexical = join_short(
            [c[0] for c in cut], np.asarray([c[1] for c in cut]), np.asarray([c[2] for c in cut]), min_words
        )
        out += [
            Candidate(number, hit.video_id, i, p.start, p.end, p.text, semantic[i], lexical[i])
            for i, p in enumerate(pieces)
        ]
    return out


def _cleaned(piece: Piece) -> Piece:
    return Piece(piece.start, piece.end, fluent(piece.text))


def _spans(piece: Piece, span_words: int = SPAN_WORDS) -> list[Piece]:
    """The piece itself, or about equal spans of at most ``span_words`` words, times interpolated along them.

    Equal spans, not ``span_words`` and a remainder: a 31-word cue cut at 30 left a one-word fragment.
    """
    words = piece.text.split()
    if len(words) <= span_words:
        return [piece]
    count = -(-len(words) // span_words)
    bounds = [round(i * len(words) / count) for i in range(count + 1)]
    step = (piece.end - piece.start) / len(words)
    return [Piece(piece.start + a * step, piece.start + b * step, " ".join(words[a:b])) for a, b in pairwise(bounds)]


def _fuse(orderings: Sequence[Sequence[float]], n: int, weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted reciprocal-rank fusion of score lists (higher is better; ties keep the input order)."""
    return rank_fusion(orderings, RRF_K, weights) if n else np.zeros(0)


def extract(
    found: SearchResult,
    embedder: Embedder,
    *,
    max_words: int = MAX_WORDS,
    min_words: int = MIN_CLAUSE_WORDS,
    one_lecture: bool = True,
    calibrated: bool = True,
    fitted: bool = True,
    span_words: int = SPAN_WORDS,
    follow: int = FOLLOW,
    model: SentenceModel | None = None,
    clean: bool = CLEAN,
) -> Extract:
    """The quotes of ``found``'s top windows that best answer its question, best first (see module docstring).

    Embeds nothing: the cosines are the search's (``found.signals``); ``embedder`` names the model,
    which says whether :data:`ABSTAIN_BELOW` (an E5 cosine) applies.
    ``min_words`` and ``one_lecture``: see :mod:`lecture_rag.generate.sentences` (0 and False: the
    previous behaviour, measured beside the new one by ``bench.bench_heldout``). ``calibrated``: abstain
    by :mod:`lecture_rag.generate.abstain` (E5 embedders only) instead of :data:`ABSTAIN_BELOW`.
    ``fitted``: rank spans by the sentence model (``model``, or the shipped one) instead of the rank
    fusion; ``follow``: how many of the best span's next spans lead the answer with it; ``clean``: quote
    the pieces without hesitations and immediate repeats (:func:`~lecture_rag.generate.sentences.fluent`).
    """
    threshold = ABSTAIN_BELOW if "e5" in embedder.name.lower() else None
    cands = candidates(found.hits, found.signals, min_words=min_words, span_words=span_words, clean=clean)
    if not cands:
        return Extract([], None, threshold)
    shortlist = _shortlist(cands)
    if fitted:
        scores = (model or sentence_model()).score(span_features(found.query, found.hits, cands))
        for cand, score in zip(cands, scores, strict=True):
            cand.score = float(score)
        ranked = sorted(cands, key=lambda c: -c.score)
    else:
        ranked = sorted(_fused(shortlist), key=lambda c: -c.score)
    if one_lecture:
        ranked = focus(ranked, found.hits[0].video_id)
    quotes = _merge(_choose(_lead(ranked, follow), max_words))
    best = max(c.cosine for c in shortlist)  # the abstention's signal: as before the sentence model
    abstainer = abstain_model() if threshold is not None and calibrated else None
    if abstainer is None:
        return Extract(quotes, best, threshold)
    return Extract(quotes, best, threshold, abstainer.probability(signals(found)), abstainer.threshold)


def _shortlist(cands: list[Candidate]) -> list[Candidate]:
    """The :data:`SHORTLIST` best of the cheap equal-weight fusion: the abstention's best cosine is read
    from them, and the rank fusion (``fitted=False``) ranks them."""
    window = [-float(c.number) for c in cands]
    cheap = _fuse([[c.semantic for c in cands], [c.lexical for c in cands], window], len(cands))
    return [cands[i] for i in np.argsort(-cheap, kind="stable")[:SHORTLIST]]


def _fused(shortlist: list[Candidate]) -> list[Candidate]:
    """The shortlist scored by the second, weighted fusion: the sentence ranking before the fitted model."""
    fused = _fuse(
        [[c.semantic for c in shortlist], [c.lexical for c in shortlist], [-float(c.number) for c in shortlist]],
        len(shortlist),
        [SEMANTIC_WEIGHT, 1.0, 1.0],
    )
    for cand, score in zip(shortlist, fused, strict=True):
        cand.score = float(score)
    return shortlist


def _lead(ranked: list[Candidate], follow: int) -> list[Candidate]:
    """``ranked`` with the best span's next ``follow`` spans of its window moved up behind it.

    Why: an answer is said over several utterances (a NURC evidence span lasts 12-35 s), and what
    follows the sentence that answers most often completes it; measured in CV (bench_heldout), quoting
    it before the next-best spans elsewhere raised gold-word recall on both ASR and human transcripts.
    """
    if not ranked or follow <= 0:
        return ranked
    best = ranked[0]
    wanted = {best.order + k for k in range(1, follow + 1)}
    after = sorted((c for c in ranked if c.number == best.number and c.order in wanted), key=lambda c: c.order)
    return [best, *after, *(c for c in ranked[1:] if c not in after)]


def _choose(ranked: list[Candidate], max_words: int) -> list[Candidate]:
    """Best candidates that fit the word budget and repeat no chosen one; one run of sentences per window.

    A window's first chosen candidate is the sentence that answers (its
    citation's one second); later ones of that window are taken only when
    they continue its run (the very next span), so a quote never starts
    before its answering sentence and ``[n]`` is quoted once.
    """
    chosen: list[Candidate] = []
    runs: dict[int, Candidate] = {}  # the last span of each window's run
    used = 0
    for cand in ranked:
        words = len(cand.text.split())
        last = runs.get(cand.number)
        if last is not None and cand.order != last.order + 1:
            continue
        if used + words > max_words or any(_repeats(cand, c) for c in chosen):
            continue
        chosen.append(cand)
        runs[cand.number] = cand
        used += words
    return chosen


def _repeats(a: Candidate, b: Candidate) -> bool:
    """Same moment of the same video, or mostly the same words."""
    if a.video_id == b.video_id and min(a.end, b.end) - max(a.start, b.start) > 0.5 * min(
        a.end - a.start, b.end - b.start
    ):
        return True
    wa, wb = set(a.text.lower().split()), set(b.text.lower().split())
    return len(wa & wb) >= REPEAT_SHARE * max(1, min(len(wa), len(wb)))


def _merge(chosen: list[Candidate]) -> list[Quote]:
    """Each window's run as one quote at its first (answering) span's second; best quote first."""
    runs: dict[int, list[Candidate]] = {}
    for cand in chosen:  # in the order chosen: a run's first span is its best
        runs.setdefault(cand.number, []).append(cand)
    ordered = sorted(runs.values(), key=lambda run: -run[0].score)
    return [Quote(run[0].number, run[0].start, " ".join(c.text for c in run)) for run in ordered]


def cite_quoted(quotes: Sequence[Quote], hits: Sequence[Hit]) -> None:
    """Each quoted window's ``cite_start`` becomes its quote's second (in place): one second per citation.

    ``[n]`` of an extractive answer is hit ``n``; its button, its hover, the
    references and the record's links all read ``cite_start``, so they say
    the second the quote line says.
    """
    for quote in quotes:
        hits[quote.number - 1].cite_start = quote.start


def render(quotes: Sequence[Quote], language: str, labels: dict[str, str] = LABEL) -> str:
    """The label (``labels``, by language: :data:`LABEL` or one of :data:`FALLBACK_LABEL`), then one line per quote."""
    lines = [labels.get(language, labels["pt"])]
    lines += [f"- {hhmmss(q.start)} «{q.text}» [{q.number}]" for q in quotes]
    return "\n".join(lines)
