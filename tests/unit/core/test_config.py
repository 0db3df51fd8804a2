"""Settings: where they are read from, what is validated at load, and that secrets stay secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from lecture_rag.cli.common import with_flags
from lecture_rag.config import RetrievalMode, SegmentationSettings, Settings, config_file, env_var, load_settings
from lecture_rag.errors import ConfigError
from lecture_rag.llm import Request, make_llm
from tests.support.servers import Reply, ScriptedServer

MESSAGES = [{"role": "user", "content": "Olá?"}]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LECTURE_RAG_CONFIG", "LECTURE_RAG_HOME"):
        monkeypatch.delenv(name, raising=False)


def test_store_dir_config_is_read(tmp_path: Path) -> None:
    """``--store DIR`` reads ``DIR/config.toml`` (it used to read only LECTURE_RAG_HOME's)."""
    store = tmp_path / "aulas"
    store.mkdir()
    (store / "config.toml").write_text('[retrieval]\nk = 3\nmode = "hybrid"\n', encoding="utf-8")
    settings = load_settings(store)
    assert settings.home == store
    assert settings.retrieval.k == 3 and settings.retrieval.mode == RetrievalMode.HYBRID
    assert config_file(store) == store / "config.toml"


def test_explicit_config_file_wins_over_the_store_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "aulas"
    store.mkdir()
    (store / "config.toml").write_text("[retrieval]\nk = 3\n", encoding="utf-8")
    explicit = tmp_path / "outro.toml"
    explicit.write_text("[retrieval]\nk = 7\n", encoding="utf-8")
    monkeypatch.setenv("LECTURE_RAG_CONFIG", str(explicit))
    assert load_settings(store).retrieval.k == 7


def test_unknown_retrieval_mode_is_refused_at_load(tmp_path: Path) -> None:
    """A bad mode used to pass loading and then fail on every web request."""
    store = tmp_path / "aulas"
    store.mkdir()
    (store / "config.toml").write_text('[retrieval]\nmode = "bogus"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(store)
    message = str(info.value)
    assert "retrieval.mode" in message and "bogus" in message and str(store / "config.toml") in message


def test_api_keys_never_show_in_repr_or_dumps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LECTURE_RAG_LLM_API_KEY", "sk-answer-secret")
    monkeypatch.setenv("LECTURE_RAG_JUDGE_LLM_API_KEY", "sk-judge-secret")
    monkeypatch.setenv("LECTURE_RAG_EMBEDDER__API_KEY", "sk-embed-secret")
    settings = load_settings(tmp_path / "aulas")
    shown = " ".join([repr(settings), str(settings), settings.model_dump_json(), repr(settings.llm)])
    for secret in ("sk-answer-secret", "sk-judge-secret", "sk-embed-secret"):
        assert secret not in shown
    assert settings.llm.api_key.get_secret_value() == "sk-answer-secret"
    assert settings.judge_llm.api_key.get_secret_value() == "sk-judge-secret"
    assert settings.embedder.api_key.get_secret_value() == "sk-embed-secret"


def test_the_secret_still_reaches_the_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LECTURE_RAG_LLM_API_KEY", "sk-answer-secret")
    with ScriptedServer([Reply()]) as server:
        monkeypatch.setenv("LECTURE_RAG_LLM_BACKEND", "openai")
        monkeypatch.setenv("LECTURE_RAG_LLM_BASE_URL", server.base_url)
        monkeypatch.setenv("LECTURE_RAG_LLM_MODEL", "m")
        llm = make_llm(load_settings(tmp_path / "aulas").llm)
        assert llm is not None
        assert llm.complete(Request(MESSAGES, max_tokens=8)).text == "Olá, mundo!"  # type: ignore[arg-type]
    assert server.hits[0].headers["authorization"] == "Bearer sk-answer-secret"


# --------------------------------------------------------------------------- segmentation flags (issue 16)


@pytest.mark.parametrize(
    ("window", "overlap", "flag"),
    [
        (-5.0, None, "--window"),
        (0.0, None, "--window"),
        (float("nan"), None, "--window"),
        (float("inf"), None, "--window"),
        (None, -1.0, "--overlap"),
        (None, float("nan"), "--overlap"),
        (None, float("inf"), "--overlap"),
        (None, 200.0, "--overlap"),
        (30.0, 45.0, "--overlap"),
        (60.0, 60.0, "--overlap"),
    ],
)
def test_bad_window_and_overlap_flags_are_refused(window: float | None, overlap: float | None, flag: str) -> None:
    """-5, nan, inf and an overlap as long as the window used to reach the segmenter unchecked."""
    settings = Settings()
    with pytest.raises(ConfigError) as info:
        with_flags(settings, settings.segmentation.flag_overrides(window=window, overlap=overlap))
    message = str(info.value)
    assert message.startswith(flag) and "segundos" in message


def test_good_flags_are_applied_and_the_cap_follows_the_window() -> None:
    settings = Settings()
    base = settings.segmentation
    assert base == SegmentationSettings()

    def flagged(window: float | None, overlap: float | None) -> SegmentationSettings:
        return with_flags(settings, base.flag_overrides(window=window, overlap=overlap)).segmentation

    assert flagged(None, None) == base
    seg = flagged(300.0, 20.0)
    assert (seg.window_seconds, seg.overlap_seconds, seg.max_window_seconds) == (300.0, 20.0, 450.0)
    assert flagged(None, 30.0).window_seconds == 120.0


@pytest.mark.parametrize(
    "section",
    [
        "window_seconds = inf",
        "window_seconds = nan",
        "window_seconds = -5",
        "overlap_seconds = inf",
        "window_seconds = 60\noverlap_seconds = 90",
    ],
)
def test_bad_segmentation_in_the_config_file_is_refused_at_load(tmp_path: Path, section: str) -> None:
    store = tmp_path / "aulas"
    store.mkdir()
    (store / "config.toml").write_text(f"[segmentation]\n{section}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(store)
    assert "segmentation" in str(info.value) and str(store / "config.toml") in str(info.value)


# --------------------------------------------------------------------------- the config file itself (issue 16)


def test_a_config_toml_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    """It used to be ignored silently: the defaults applied and nobody knew why."""
    store = tmp_path / "aulas"
    (store / "config.toml").mkdir(parents=True)
    with pytest.raises(ConfigError) as info:
        load_settings(store)
    assert str(store / "config.toml") in str(info.value) and "pasta" in str(info.value)


def test_a_missing_file_named_by_lecture_rag_config_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LECTURE_RAG_CONFIG", str(tmp_path / "nao-existe.toml"))
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "aulas")
    assert "LECTURE_RAG_CONFIG" in str(info.value) and "nao-existe.toml" in str(info.value)


def test_a_store_without_config_toml_still_uses_the_defaults(tmp_path: Path) -> None:
    assert load_settings(tmp_path / "aulas").retrieval.k == 10


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "UTF-8"),
        ("[retrieval]\nmode = 'híbrido'\n".encode("cp1252"), "UTF-8"),
        (b"a = " + b"[" * 100_000 + b"]" * 100_000 + b"\n", "aninhad"),
        (b"\xef\xbb\xbf[retrieval]\nk = 3\n", "BOM"),
        (b"[retrieval\nk = 3\n", "TOML"),
    ],
)
def test_an_unreadable_config_file_is_a_clear_error(tmp_path: Path, content: bytes, expected: str) -> None:
    """A binary file used to end in a UnicodeDecodeError traceback, deep nesting in a RecursionError."""
    store = tmp_path / "aulas"
    store.mkdir()
    (store / "config.toml").write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_settings(store)
    assert str(store / "config.toml") in str(info.value) and expected in str(info.value)


# --------------------------------------------------------------------------- one path for flags, env names, unknown keys


def test_every_flag_goes_through_the_same_validation_as_the_config_file() -> None:
    """Flags used to be copied in with ``model_copy``, unchecked: ``--rerank bogus`` reached the retriever."""
    settings = Settings()
    assert settings.with_overrides({"retrieval.rerank": "llm"}).retrieval.rerank == "llm"
    assert with_flags(settings, {"retrieval.k": None}) == settings  # None: the flag was not given
    with pytest.raises(ConfigError) as info:
        with_flags(settings, {"retrieval.rerank": "bogus"})
    assert str(info.value).startswith("--rerank bogus: use 'none'")
    with pytest.raises(ConfigError) as info:
        with_flags(settings, {"llm.backend": 3, "batch.workers": -1})
    assert "--llm 3" in str(info.value) and "--workers -1: precisa ser 0 ou mais" in str(info.value)


def test_environment_variable_names_come_from_the_settings_model() -> None:
    assert env_var("llm", "base_url") == "LECTURE_RAG_LLM_BASE_URL"
    assert env_var("judge_llm") == "LECTURE_RAG_JUDGE_LLM_"
    assert env_var("embedder", "model") == "LECTURE_RAG_EMBEDDER__MODEL"
    assert env_var("store", "url") == "LECTURE_RAG_DATABASE_URL"
    assert env_var("home") == "LECTURE_RAG_HOME"
    with pytest.raises(KeyError):
        env_var("llm", "bogus")
    with pytest.raises(KeyError):
        env_var("bogus")


def test_an_unknown_environment_variable_of_a_section_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LECTURE_RAG_RETRIEVAL__BOGUS", "1")
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "aulas")
    assert "'bogus' em [retrieval] (na variável LECTURE_RAG_RETRIEVAL__BOGUS)" in str(info.value)


def test_the_judge_has_no_context_budget(tmp_path: Path) -> None:
    """``[judge_llm] context_budget`` was accepted and read by nothing: the judges read whole segments."""
    store = tmp_path / "aulas"
    store.mkdir()
    (store / "config.toml").write_text("[judge_llm]\ncontext_budget = 100\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(store)
    message = str(info.value)
    assert "'context_budget' em [judge_llm]" in message and "vale só para [llm]" in message
    assert str(store / "config.toml") in message and "label_max_tokens" in message
    (store / "config.toml").write_text("[llm]\ncontext_budget = 100\n", encoding="utf-8")
    assert load_settings(store).llm.context_budget == 100
