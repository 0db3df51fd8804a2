"""Settings: where they are read from, what is validated at load, and that secrets stay secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from lecture_rag.config import RetrievalMode, config_file, load_settings
from lecture_rag.errors import ConfigError
from lecture_rag.generate.llm import make_llm
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
        assert llm.complete(MESSAGES, max_tokens=8).text == "Olá, mundo!"  # type: ignore[arg-type]
    assert server.hits[0].headers["authorization"] == "Bearer sk-answer-secret"
