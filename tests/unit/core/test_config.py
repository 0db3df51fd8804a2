"""Settings: where they are read from, what is validated at load, and that secrets stay secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from lecture_rag.config import RetrievalMode, SegmentationSettings, config_file, load_settings
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
    with pytest.raises(ConfigError) as info:
        SegmentationSettings().with_flags(window=window, overlap=overlap)
    message = str(info.value)
    assert message.startswith(flag) and "segundos" in message


def test_good_flags_are_applied_and_the_cap_follows_the_window() -> None:
    base = SegmentationSettings()
    assert base.with_flags(window=None, overlap=None) == base
    seg = base.with_flags(window=300.0, overlap=20.0)
    assert (seg.window_seconds, seg.overlap_seconds, seg.max_window_seconds) == (300.0, 20.0, 450.0)
    assert base.with_flags(window=None, overlap=30.0).window_seconds == 120.0


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
