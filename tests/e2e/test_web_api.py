"""The HTTP API against a live uvicorn server over a real indexed store.

The store and server are the session's shared ones, built by :func:`tests.support.web.web_server`
(shared with the browser tests): three lectures, two with HTML/script payloads, and a no-LLM run.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.web import (
    IMG_CAPTION,
    MEDIA_URL,
    Q_CAVES,
    Q_INDUSTRY,
    Q_PHOTO,
    RUN,
    RUN_QUESTIONS,
    SCRIPT_CAPTION,
    TOKEN,
    XSS_TITLE,
    YOUTUBE_ID,
    WebServer,
    auth,
    parse_events,
    stored_annotations,
    verdicts,
    web_server,
)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    srv = web_server(tmp_path_factory)
    yield srv
    srv.stop()


@pytest.fixture
def client(server: WebServer) -> Any:
    with httpx.Client(base_url=server.base_url, timeout=60) as c:
        yield c


def ask(client: httpx.Client, question: str, **options: Any) -> list[tuple[str, Any]]:
    response = client.post("/api/ask", json={"question": question, **options})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return parse_events(response.text)


# --------------------------------------------------------------------------- tests


def test_serve_prints_a_one_time_login_link_once_and_never_the_token(server: WebServer) -> None:
    # Issue 16: the printed URL used to carry ?token=…, which stays in the browser's history; the token
    # given to serve is never printed now, and the link holds a one-time code instead.
    log = server.log.read_text(encoding="utf-8", errors="replace")
    assert log.count("/login?code=") == 1
    assert f"{server.base_url}/login?code=" in log
    assert TOKEN not in log and "?token=" not in log


def test_login_with_the_token_opens_a_session_that_hands_the_token_to_the_page(server: WebServer) -> None:
    with httpx.Client(base_url=server.base_url, timeout=30) as browser:
        assert browser.get("/api/session").status_code == 401
        wrong = browser.post("/login", data={"token": "outro"})
        assert wrong.status_code == 401 and "Token inválido" in wrong.text and "set-cookie" not in wrong.headers
        opened = browser.post("/login", data={"token": TOKEN, "next": f"/runs/{RUN}/annotate"})
        assert opened.status_code == 303 and opened.headers["location"] == f"/runs/{RUN}/annotate"
        assert opened.headers["cache-control"] == "no-store"
        assert browser.get("/api/session").json() == {"token": TOKEN}
        assert 'data-session="1"' in browser.get("/").text
    assert 'data-session="1"' not in httpx.get(server.base_url + "/").text
    dead = httpx.get(server.base_url + "/login", params={"code": "inventado"})
    assert dead.status_code == 401 and "já foi usado ou expirou" in dead.text


def test_health_and_videos_describe_the_store(client: httpx.Client) -> None:
    health = client.get("/api/health").json()
    assert health == {**health, "status": "ok", "videos": 3, "stale_index": False, "problem": ""}
    assert health["segments"] >= 5 and health["llm"].startswith("nenhum")
    assert health["llm_check"] is None  # the LLM is probed only when asked
    checked = client.get("/api/health", params={"llm": "true"}).json()["llm_check"]
    assert (
        checked["backend"] == "none" and checked["answers"] is None and "LECTURE_RAG_LLM_BACKEND" in checked["advice"]
    )
    videos = {v["video_id"]: v for v in client.get("/api/videos").json()}
    assert videos["bio-fotossintese"]["player"] == {
        "kind": "youtube",
        "src": f"https://www.youtube.com/embed/{YOUTUBE_ID}",
        "youtube_id": YOUTUBE_ID,
    }
    assert videos["hist-revolucao"]["player"] == {"kind": "media", "src": MEDIA_URL, "youtube_id": None}
    assert videos["hist-revolucao"]["title"] == XSS_TITLE
    assert videos["SP_EF_405"]["player"]["kind"] == "none" and videos["SP_EF_405"]["n_segments"] > 5
    assert videos["SP_EF_405"]["transcript_source"] == "human:nurc_csv"
    assert videos["hist-revolucao"]["source_label"] == "arquivo de transcrição (srt)"


def test_lectures_page_says_where_each_transcript_came_from(client: httpx.Client) -> None:
    page = client.get("/aulas")
    assert page.status_code == 200
    assert "transcrição humana (CSV NURC)" in page.text and "arquivo de transcrição (srt)" in page.text
    assert "<img src=x" not in page.text and "Revolução Industrial &lt;img" in page.text
    assert f'href="{MEDIA_URL}"' in page.text


def test_search_returns_scored_segments_in_each_mode(client: httpx.Client) -> None:
    dense = client.get("/api/search", params={"q": Q_INDUSTRY, "k": 2}).json()
    assert dense["mode"] == "dense" and dense["k"] == 2 and len(dense["hits"]) == 2
    top = dense["hits"][0]
    assert top["video_id"] == "hist-revolucao" and top["inicio"] == "00:00:03" and 0.5 < top["score"] <= 1
    assert top["url"] == MEDIA_URL + "#t=3" and top["player"]["kind"] == "media"
    bm25 = client.get("/api/search", params={"q": "carvão mineral", "k": 3, "mode": "bm25"}).json()
    assert bm25["hits"][0]["video_id"] == "hist-revolucao" and bm25["hits"][0]["score"] is None
    assert bm25["hits"][0]["bm25"] > 0
    hybrid = client.get("/api/search", params={"q": "pinturas nas cavernas", "k": 3, "mode": "hybrid"}).json()
    assert [h["rank"] for h in hybrid["hits"]] == [1, 2, 3]


def test_search_rejects_bad_parameters_in_portuguese(client: httpx.Client) -> None:
    bad_mode = client.get("/api/search", params={"q": "arte", "mode": "magic"})
    assert bad_mode.status_code == 422 and "mode" in bad_mode.json()["detail"]
    assert client.get("/api/search", params={"q": "arte", "k": 0}).status_code == 422
    assert client.get("/api/search").json()["detail"] == "Pedido inválido: q: obrigatório e ausente."
    unknown = client.get("/api/search", params={"q": "arte", "course": "astronomia"})
    assert unknown.status_code == 400 and "Nenhuma aula do curso 'astronomia'" in unknown.json()["detail"]


def test_ask_streams_hits_then_tokens_then_done(client: httpx.Client) -> None:
    events = ask(client, Q_PHOTO, k=3)
    names = [name for name, _ in events]
    assert names[0] == "hits" and names[-1] == "done"
    assert set(names[1:-1]) == {"token"} and len(names) >= 3
    hits = events[0][1]["hits"]
    assert [h["rank"] for h in hits] == [1, 2, 3] and hits[0]["video_id"] == "bio-fotossintese"
    done = events[-1][1]
    assert "".join(data["text"] for name, data in events if name == "token") == done["answer"]
    assert done["extractive"] is True and done["abstained"] is False and done["error"] == ""
    assert done["citations"] and all(1 <= n <= done["context_size"] for n in done["citations"])
    ref = done["references"][0]
    assert ref["video_id"] == "bio-fotossintese" and ref["player"]["youtube_id"] == YOUTUBE_ID
    cited = {t["n"]: t for r in done["references"] for t in r["times"]}
    for n, t in cited.items():
        hit = done["context"][n - 1]
        # the second the quoted sentence is said: inside its window, and where the link opens
        assert hit["start"] <= t["start"] <= hit["end"]
        assert not t["url"] or f"t={int(t['start'])}s" in t["url"], t["url"]  # no URL: no link
    assert SCRIPT_CAPTION in hits[0]["text"] and IMG_CAPTION in hits[0]["text"]


def test_ask_options_and_errors(client: httpx.Client) -> None:
    only_video = ask(client, "arte nas cavernas", k=2, mode="bm25", video="SP_EF_405")
    assert {h["video_id"] for h in only_video[0][1]["hits"]} == {"SP_EF_405"}
    unknown = ask(client, "pinturas", video="nao-existe")
    assert [name for name, _ in unknown] == ["error"]
    assert "A aula 'nao-existe' não está no acervo" in unknown[0][1]["message"]
    blank = client.post("/api/ask", json={"question": "   "})
    assert blank.status_code == 422 and "a pergunta está vazia" in blank.json()["detail"]
    extra = client.post("/api/ask", json={"question": "arte", "temperature": 2})
    assert extra.status_code == 422 and "campo desconhecido" in extra.json()["detail"]
    not_json = client.post("/api/ask", content=b"{quebrado", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 422


def test_oversized_input_is_refused(client: httpx.Client) -> None:
    long_question = client.post("/api/ask", json={"question": "a" * 10_001})
    assert long_question.status_code == 422
    assert "question: longo demais (máximo 10000 caracteres)" in long_question.json()["detail"]
    assert client.post("/api/ask", json={"question": "a" * 10_000, "k": 1}).status_code == 200
    huge = client.post("/api/ask", json={"question": "a" * 70_000})
    assert huge.status_code == 413 and "64 KB" in huge.json()["detail"]

    def chunks() -> Any:  # no Content-Length: the limit must hold for chunked bodies too
        for _ in range(70):
            yield b"x" * 1024

    chunked = client.post("/api/ask", content=chunks(), headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413
    comment = client.post(
        f"/api/runs/{RUN}/annotations",
        headers=auth(),
        json={"qid": "nurc-048", "label": "C", "annotator": "x", "comment": "c" * 2001},
    )
    assert comment.status_code == 422


def test_the_run_was_judged_by_the_real_bundled_model(server: WebServer) -> None:
    with sqlite3.connect(server.store / "lecture-rag.sqlite3") as conn:
        rows = conn.execute("SELECT kind, parsed, data FROM judgments WHERE run=?", (RUN,)).fetchall()
    assert sorted(kind for kind, _, _ in rows) == ["answer_relevance"] * 5 + ["auto_label"] * 5
    for _, parsed, data in rows:
        judgment = json.loads(data)
        assert parsed == 1 and judgment["model"] == "gguf:SmolLM2-135M-Instruct.Q4_1.gguf"
        assert judgment["raw"].startswith(("Criteria: ", "Justification: "))  # the output grammar held
    assert {v.label for v in verdicts(server.store).values()} <= {"C", "P", "I", "N"}


def test_runs_and_records_hide_the_automated_label_until_labelled(client: httpx.Client, server: WebServer) -> None:
    expected = verdicts(server.store)
    runs = {r["name"]: r for r in client.get("/api/runs").json()}
    assert runs[RUN]["items"] == 5 and runs[RUN]["config"]["llm"] == "none (extrativa)"
    fresh = client.get(f"/api/runs/{RUN}/records", params={"annotator": "ninguém-ainda"}).json()
    assert fresh["total"] == 5 and fresh["first_pending"] == 0 and fresh["annotated_by_annotator"] == 0
    assert [lab["code"] for lab in fresh["labels"]] == ["C", "P", "I", "N"]
    assert all(r["auto_label"] is None and r["auto_label_hidden"] for r in fresh["records"])
    first = fresh["records"][0]
    assert first["qid"] == "web-foto" and first["number"] == 1 and first["question"] == Q_PHOTO
    assert first["answer"]["extractive"] and first["answer"]["hits"][0]["player"]["kind"] == "youtube"
    assert first["answer_relevance"]["score"] == expected["web-foto"].ar
    assert first["answer_relevance"]["reasoning"] == expected["web-foto"].ar_reasoning
    everything = client.get(f"/api/runs/{RUN}/records").json()
    assert [r["auto_label"] for r in everything["records"]] == [expected[q].label for q, _ in RUN_QUESTIONS]
    missing = client.get("/api/runs/nao-existe/records")
    assert missing.status_code == 404 and "Rodada 'nao-existe' não existe" in missing.json()["detail"]


def test_annotation_needs_the_token_and_is_stored(client: httpx.Client, server: WebServer) -> None:
    body = {"qid": "nurc-049", "label": "correta", "annotator": "  api  teste ", "comment": "ok"}
    url = f"/api/runs/{RUN}/annotations"
    assert client.post(url, json=body).status_code == 401
    wrong = client.post(url, json=body, headers=auth("outro-token"))
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert stored_annotations(server.store, "api teste") == {}
    saved = client.post(url, json=body, headers=auth())
    assert saved.status_code == 200, saved.text
    auto = verdicts(server.store)["nurc-049"].label
    assert saved.json() == {
        "run": RUN,
        "qid": "nurc-049",
        "annotator": "api teste",
        "label": "C",
        "comment": "ok",
        "auto_label": auto,
        "annotated_by_annotator": 1,
        "total": 5,
    }
    assert stored_annotations(server.store, "api teste") == {"nurc-049": "C"}
    again = client.post(url, json={**body, "label": "i"}, headers=auth())
    assert again.json()["label"] == "I" and stored_annotations(server.store, "api teste") == {"nurc-049": "I"}
    records = client.get(f"/api/runs/{RUN}/records", params={"annotator": "api teste"}).json()
    shown = {r["qid"]: r["auto_label"] for r in records["records"]}
    assert shown == {"web-foto": None, "nurc-048": None, "nurc-049": auto, "nurc-050": None, "nurc-051": None}
    assert records["first_pending"] == 0 and records["annotated_by_annotator"] == 1
    bad_label = client.post(url, json={**body, "label": "X"}, headers=auth())
    assert bad_label.status_code == 422 and "rótulo desconhecido" in bad_label.json()["detail"]
    assert client.post(url, json={**body, "qid": "nope"}, headers=auth()).status_code == 404
    assert client.post("/api/runs/nao-existe/annotations", json=body, headers=auth()).status_code == 404


def test_agreement_endpoint_reports_the_summary(client: httpx.Client, server: WebServer) -> None:
    summary = client.get(f"/api/runs/{RUN}/agreement").json()
    assert summary["questions"] == 5 and summary["answers"]["extractive"] == 5
    expected = verdicts(server.store).values()
    assert summary["auto_labels"] == dict(Counter(v.label for v in expected))
    assert summary["judges"]["answer_relevance"]["n_scored"] == 5
    assert summary["judges"]["answer_relevance"]["mean"] == pytest.approx(sum(v.ar for v in expected) / 5)
    assert summary["judges"]["groundedness"]["judged"] == 0  # not asked for in this run


def test_openapi_documents_every_endpoint(client: httpx.Client) -> None:
    schema = client.get("/api/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/api/ask",
        "/api/search",
        "/api/videos",
        "/api/runs",
        "/api/runs/{name}/records",
        "/api/runs/{name}/annotations",
        "/api/runs/{name}/agreement",
        "/api/health",
        "/api/llm",
    ):
        assert path in paths, path
    components = schema["components"]["schemas"]
    assert {
        "AskRequest",
        "AnnotationIn",
        "AnnotationSaved",
        "RecordsOut",
        "SseHits",
        "SseToken",
        "SseError",
        "Answer",
        "Hit",
    } <= set(components)
    ask_doc = paths["/api/ask"]["post"]
    assert ask_doc["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/AskRequest")
    assert len(ask_doc["responses"]["200"]["content"]["text/event-stream"]["schema"]["oneOf"]) == 4
    assert components["AskRequest"]["properties"]["question"]["maxLength"] == 10_000
    assert paths["/api/runs/{name}/annotations"]["post"]["security"] == [{"HTTPBearer": []}]


def test_security_headers_host_check_and_static_files(client: httpx.Client) -> None:
    page = client.get("/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-src https://www.youtube.com" in csp and "unsafe" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    rebinding = client.get("/api/health", headers={"Host": "evil.example:8000"})
    assert rebinding.status_code == 400
    assert client.get("/static/common.js").headers["content-type"].startswith("text/javascript")
    for path in ("/static/nao-existe.js", "/static/..%2Fapp.py", "/static/%2e%2e%2fresources.py"):
        assert client.get(path).status_code == 404, path
    not_found = client.get("/runs/nao-existe/annotate")
    assert not_found.status_code == 404 and "Rodada &#39;nao-existe&#39; não existe" in not_found.text


def test_twenty_simultaneous_questions_all_complete(server: WebServer) -> None:
    questions = [Q_PHOTO, Q_INDUSTRY, "O que a máquina a vapor mudou?", "O que é o ciclo de Calvin?"]

    async def one(client: httpx.AsyncClient, question: str) -> tuple[str, list[tuple[str, Any]]]:
        response = await client.post("/api/ask", json={"question": question, "k": 2})
        assert response.status_code == 200
        return question, parse_events(response.text)

    async def all_of_them() -> list[tuple[str, list[tuple[str, Any]]]]:
        limits = httpx.Limits(max_connections=20)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=120, limits=limits) as client:
            return await asyncio.gather(*(one(client, questions[i % 4]) for i in range(20)))

    started = time.perf_counter()
    results = asyncio.run(all_of_them())
    elapsed = time.perf_counter() - started
    print(f"\n20 perguntas simultâneas (sem LLM, k=2): {elapsed:.2f} s no total")
    for question, events in results:
        names = [name for name, _ in events]
        assert names[0] == "hits" and names[-1] == "done" and "token" in names, names
        done = events[-1][1]
        assert done["question"] == question and done["references"] and done["error"] == ""
        assert "".join(d["text"] for n, d in events if n == "token") == done["answer"]
        assert [h["corpus_id"] for h in events[0][1]["hits"]] == [h["corpus_id"] for h in done["hits"]]


def test_create_app_refuses_a_missing_store(tmp_path: Path) -> None:
    from lecture_rag.config import load_settings
    from lecture_rag.errors import StoreError
    from lecture_rag.web.app import create_app

    with pytest.raises(StoreError, match="Nenhum acervo"):
        create_app(load_settings(tmp_path / "vazio"), token="x")


@pytest.mark.parametrize(
    ("url", "kind", "src"),
    [
        ("https://youtu.be/dQw4w9WgXcQ?t=10", "youtube", "https://www.youtube.com/embed/dQw4w9WgXcQ"),
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=5s", "youtube", "https://www.youtube.com/embed/dQw4w9WgXcQ"),
        ("http://ufsc.br/aulas/a.mp4#t=30", "media", "http://ufsc.br/aulas/a.mp4"),
        ("javascript:alert(1)", "none", None),
        ("file:///home/ana/aula.mp4", "none", None),
        ("aulas/local.mp4", "none", None),
        ("", "none", None),
    ],
)
def test_player_only_plays_http_media_and_youtube(url: str, kind: str, src: str | None) -> None:
    from lecture_rag.links import player_for

    player = player_for(url)
    assert (player.kind, player.src) == (kind, src)


def test_a_client_leaving_mid_stream_does_not_disturb_the_server(server: WebServer, client: httpx.Client) -> None:
    with client.stream("POST", "/api/ask", json={"question": Q_CAVES}) as response:
        first = next(response.iter_lines())
        assert first == "event: hits"
    # the connection is closed with the answer still being computed; the next questions are unaffected
    events = ask(client, Q_INDUSTRY, k=2)
    assert [events[0][0], events[-1][0]] == ["hits", "done"]
    assert client.get("/api/health").json()["status"] == "ok"
    assert server.process.poll() is None


@pytest.mark.slow
def test_llm_answer_streams_token_deltas_in_process(server: WebServer) -> None:
    """A real (tiny) GGUF model in-process: tokens arrive one delta at a time, then done with the same text."""
    from fastapi.testclient import TestClient

    from lecture_rag.config import load_settings
    from lecture_rag.web.app import create_app

    settings = load_settings(server.store)
    settings = settings.model_copy(
        update={
            "llm": settings.llm.model_copy(update={"backend": "gguf:bundled", "max_tokens": 48, "context_window": 2048})
        }
    )
    app = create_app(settings, token="t")
    with TestClient(app, base_url="http://127.0.0.1") as local:
        started = time.perf_counter()
        response = local.post("/api/ask", json={"question": Q_INDUSTRY, "k": 2})
        elapsed = time.perf_counter() - started
    events = parse_events(response.text)
    names = [name for name, _ in events]
    assert names[0] == "hits" and names[-1] == "done" and names.count("token") > 3, names
    done = events[-1][1]
    assert done["extractive"] is False and done["model"].startswith("gguf:") and done["error"] == ""
    assert "".join(d["text"] for n, d in events if n == "token").strip() == done["answer"]
    assert done["timing"]["completion_tokens"] > 3
    print(f"\nGGUF em processo: {names.count('token')} eventos token em {elapsed:.2f} s")
