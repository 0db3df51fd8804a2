"""Several ``lecture-rag serve`` replicas on one store, as a university would run them behind a proxy.

Real processes only: two ``serve`` replicas, the CLI as a third process that
ingests while the replicas answer, and HTTP clients in threads. Checked:

* 200 annotation writes spread over both replicas at once (many annotators on
  the same records at the same moment): every write is kept exactly once, and
  both replicas read the same labels;
* a lecture ingested by the third process becomes findable through both
  replicas' searches within a bounded time, and no search fails meanwhile
  (each replica rebuilds or loads the new build in the background and swaps it in).

Both stores: SQLite, where the replicas share one store folder (its database
and its index builds), and a real PostgreSQL, where each replica (and the
CLI) has a local folder of its own for its index builds and the database is
all they share.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cli import run_cli
from tests.support.postgres import PgServer
from tests.support.servers import ServeProcess, start_serve

pytestmark = pytest.mark.slow

TOKEN = "token-das-replicas-9b2e"
RUN = "replicas"
POLL_S = 1.0
VISIBLE_WITHIN_S = 60.0  # generous: a 2-core machine shared with other jobs
LABELS = ("C", "P", "I", "N")
QUESTIONS = 10
ANNOTATORS = 20  # x QUESTIONS = 200 writes
ASK = "O que a clorofila absorve da luz do sol?"

PHOTO = [
    (5, 20, "Hoje vamos estudar a fotossíntese, o processo pelo qual as plantas produzem o próprio alimento."),
    (20, 45, "A clorofila nos cloroplastos absorve a luz do sol, principalmente nas faixas do azul e do vermelho."),
    (45, 80, "Na fase clara, a energia luminosa quebra a molécula de água e libera oxigênio para a atmosfera."),
    (130, 170, "Na fase escura, o ciclo de Calvin fixa o gás carbônico e produz glicose usando ATP e NADPH."),
]
VOLCANOES = (
    "geo-vulcoes",
    "Quais vulcões ficam no Círculo de Fogo do Pacífico?",
    [
        (4, 40, "Os vulcões do Círculo de Fogo do Pacífico nascem onde as placas tectônicas mergulham no manto."),
        (40, 90, "O magma sobe pela chaminé do vulcão e a lava escorre pelas encostas, como no monte Fuji."),
        (130, 175, "O Krakatoa explodiu em 1883 e as cinzas escureceram o céu do planeta por meses."),
    ],
)
MUSIC = (
    "mus-villa-lobos",
    "Quem compôs as Bachianas Brasileiras?",
    [
        (3, 50, "Heitor Villa-Lobos compôs as nove Bachianas Brasileiras, unindo Bach e a música popular."),
        (50, 110, "A Bachiana número cinco, para soprano e oito violoncelos, é a mais gravada no mundo."),
        (125, 170, "Villa-Lobos levou o canto orfeônico às escolas públicas do Rio de Janeiro nos anos trinta."),
    ],
)


def srt(cues: list[tuple[float, float, str]]) -> str:
    def stamp(s: float) -> str:
        return f"{int(s // 3600):02d}:{int(s % 3600 // 60):02d}:{int(s % 60):02d},000"

    return "\n".join(f"{i}\n{stamp(a)} --> {stamp(b)}\n{text}\n" for i, (a, b, text) in enumerate(cues, start=1))


@dataclass
class Cluster:
    """Two replicas and what a third process needs to reach the same store."""

    root: Path
    store: Path  # the CLI's store folder
    replicas: list[ServeProcess]
    env: dict[str, str] = field(default_factory=dict)  # the store settings every process shares

    def cli(self, *args: str) -> Any:
        result = run_cli(*args, "--store", str(self.store), env=self.env)
        assert result.returncode == 0, result.stderr + result.stdout
        return result


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The CLI ingests a lecture and answers a run; then two replicas start (each on its own folder on PostgreSQL)."""
    root = tmp_path_factory.mktemp(f"replicas-{request.param}")
    store = root / "store"
    env = {"LECTURE_RAG_STORE__INDEX_POLL_SECONDS": str(POLL_S)}
    folders = [store, store]
    if request.param == "postgresql":
        pg: PgServer = request.getfixturevalue("pg_server")
        env["LECTURE_RAG_DATABASE_URL"] = pg.new_database()
        folders = [root / "replica-0", root / "replica-1"]  # empty: each replica builds its own index at start
    (root / "fotossintese.srt").write_text(srt(PHOTO), encoding="utf-8")
    questions = root / "perguntas.jsonl"
    questions.write_text(
        "".join(
            f'{{"id": "q{i:02d}", "question": "{ASK} ({i})", "answer": null, "evidence": [], "label": null}}\n'
            for i in range(QUESTIONS)
        ),
        encoding="utf-8",
    )
    boot = Cluster(root, store, [], env)
    boot.cli("ingest", str(root / "fotossintese.srt"), "--video-id", "bio-fotossintese")
    boot.cli("run", str(questions), "--name", RUN, "--llm", "none", "--judge-llm", "none", "--k", "3")
    replicas: list[ServeProcess] = []
    try:
        for n, folder in enumerate(folders):
            replicas.append(start_serve(folder, root / f"replica-{n}.log", TOKEN, env=env))
        yield Cluster(root, store, replicas, env)
    finally:
        for replica in replicas:
            replica.stop()


def annotation(qid: str, annotator: str) -> dict[str, str]:
    label = LABELS[sum(map(ord, qid + annotator)) % len(LABELS)]
    return {"qid": qid, "annotator": annotator, "label": label, "comment": f"{annotator} sobre {qid}"}


def annotations_seen(replica: ServeProcess) -> Counter[tuple[str, str, str, str]]:
    """Every (qid, annotator, label, comment) the replica reads back, counted."""
    response = httpx.get(f"{replica.base_url}/api/runs/{RUN}/records", timeout=60)
    assert response.status_code == 200, response.text
    return Counter(
        (record["qid"], who, note["label"], note["comment"])
        for record in response.json()["records"]
        for who, note in record["annotations"].items()
    )


def test_200_concurrent_annotations_over_two_replicas_are_all_kept_once(cluster: Cluster) -> None:
    qids = [f"q{i:02d}" for i in range(QUESTIONS)]
    annotators = [f"anotador-{n:02d}" for n in range(ANNOTATORS)]
    # Record-major order: the writes in flight at any moment are many annotators on the same record.
    writes = [annotation(qid, who) for qid in qids for who in annotators]
    clients = [httpx.Client(base_url=r.base_url, timeout=120) for r in cluster.replicas]
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def post(n: int) -> int:
        return clients[n % 2].post(f"/api/runs/{RUN}/annotations", json=writes[n], headers=headers).status_code

    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(post, range(len(writes))))
        # One annotator relabelling one record through both replicas at once: the last writer wins, one row.
        relabel = [{**annotation("q00", "ana"), "label": label} for label in ("C", "I")]
        with ThreadPoolExecutor(max_workers=2) as pool:
            both = list(
                pool.map(
                    lambda n: clients[n].post(f"/api/runs/{RUN}/annotations", json=relabel[n], headers=headers),
                    range(2),
                )
            )
    finally:
        for client in clients:
            client.close()
    assert Counter(statuses) == {200: len(writes)}
    assert [r.status_code for r in both] == [200, 200]
    expected = Counter((w["qid"], w["annotator"], w["label"], w["comment"]) for w in writes)
    for replica in cluster.replicas:
        seen = annotations_seen(replica)
        ana = [key for key in seen if key[1] == "ana"]
        assert len(ana) == 1 and ana[0][2] in ("C", "I")
        del seen[ana[0]]
        assert seen == expected  # all 200, each exactly once, through either replica


def test_an_ingest_by_a_third_process_reaches_both_replicas_with_no_failed_search(cluster: Cluster) -> None:
    before = [r.health()["index"] for r in cluster.replicas]
    statuses: Counter[int] = Counter()
    tops: dict[tuple[int, str], str] = {}
    lock = threading.Lock()
    done = threading.Event()

    def hammer(n: int) -> None:
        with httpx.Client(base_url=cluster.replicas[n].base_url, timeout=120) as client:
            while not done.is_set():
                for video_id, question, _ in (VOLCANOES, MUSIC):
                    response = client.get("/api/search", params={"q": question, "k": 3, "mode": "hybrid"})
                    with lock:
                        statuses[response.status_code] += 1
                        if response.status_code == 200:
                            hits = response.json()["hits"]
                            tops[(n, video_id)] = hits[0]["video_id"] if hits else ""

    def visible(video_id: str) -> float:
        """Seconds until both replicas' searches put ``video_id`` first (fails past the bound)."""
        start = time.monotonic()
        with lock:
            for n in range(2):
                tops.pop((n, video_id), None)
        while time.monotonic() - start < VISIBLE_WITHIN_S:
            with lock:
                if all(tops.get((n, video_id)) == video_id for n in range(2)):
                    return time.monotonic() - start
            time.sleep(0.1)
        raise AssertionError(f"{video_id} não apareceu nas duas réplicas em {VISIBLE_WITHIN_S} s: {tops}")

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    try:
        waits = {}
        # 1) ingest without indexing: each replica notices the corpus version and builds (on SQLite one builds and
        #    the other finds that build up to date, as they share the folder); 2) a plain ingest publishes the
        #    build itself (into the replicas' folder on SQLite: they load it; on PostgreSQL each builds its own).
        for (video_id, _, cues), flags in ((VOLCANOES, ["--no-index"]), (MUSIC, [])):
            source = cluster.root / f"{video_id}.srt"
            source.write_text(srt(cues), encoding="utf-8")
            cluster.cli("ingest", str(source), "--video-id", video_id, *flags)
            waits[video_id] = visible(video_id)
    finally:
        done.set()
        for thread in threads:
            thread.join(120)
    assert set(statuses) == {200}, statuses  # not one failed search during two swaps on each replica
    assert statuses[200] > 20
    print(f"visible after {waits} s; {statuses[200]} searches, all 200")
    after = [replica.health()["index"] for replica in cluster.replicas]
    for index, old in zip(after, before, strict=True):
        assert index["build"] != old["build"] and index["swaps"] >= old["swaps"] + 1 and index["error"] == ""
        assert index["corpus_version"] == index["store_version"] == old["store_version"] + 2
    folders = {replica.store for replica in cluster.replicas}
    # one folder: one build, both load it; a folder each (PostgreSQL): each replica built its own
    assert len({index["build"] for index in after}) == len(folders)


def test_a_browser_session_opened_on_one_replica_writes_through_the_other(cluster: Cluster) -> None:
    first, second = cluster.replicas
    with httpx.Client(base_url=first.base_url, timeout=60) as browser:
        opened = browser.post("/login", data={"token": TOKEN, "next": f"/runs/{RUN}/annotate"})
        assert opened.status_code == 303
        cookies = browser.cookies
    with httpx.Client(base_url=second.base_url, timeout=60, cookies=cookies) as elsewhere:
        token = elsewhere.get("/api/session").json()["token"]  # what the annotation page does, on the other replica
        saved = elsewhere.post(
            f"/api/runs/{RUN}/annotations",
            json=annotation("q03", "navegador"),
            headers={"Authorization": f"Bearer {token}"},
        )
    assert saved.status_code == 200, saved.text
    assert ("q03", "navegador") in {(qid, who) for qid, who, _, _ in annotations_seen(first)}
