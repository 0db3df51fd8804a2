"""SQuAD files are evaluated in stores of their own: the user's lectures stay untouched."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.support.cli import run_cli
from tests.support.paths import shared


def _first_paragraphs(source: Path, target: Path, n: int) -> Path:
    """A small SQuAD file made at test time from the shared data (never committed)."""
    data: dict[str, Any] = json.loads(source.read_text(encoding="utf-8"))
    article = data["data"][0]
    small = {"version": data.get("version", ""), "data": [{**article, "paragraphs": article["paragraphs"][:n]}]}
    target.write_text(json.dumps(small, ensure_ascii=False), encoding="utf-8")
    return target


def _videos(store: Path) -> list[str]:
    return [v["video_id"] for v in json.loads(run_cli("corpus", "list", "--json", store=store).stdout)]


def test_squad_files_never_enter_the_users_store(nurc_indexed: Path, tmp_path: Path) -> None:
    store = tmp_path / "aulas"
    shutil.copytree(nurc_indexed, store)
    before = _videos(store)
    faquad = _first_paragraphs(next(shared("faquad").glob("*.json")), tmp_path / "faquad3.json", 3)
    squad = _first_paragraphs(next(shared("squad-pt-sample").glob("*.json")), tmp_path / "squad3.json", 3)
    reports = {}
    for path in (faquad, squad, faquad):
        result = run_cli("eval", "retrieval", str(path), "--mode", "bm25", "--json", store=store)
        assert result.returncode == 0, result.stderr
        reports.setdefault(path.name, []).append(json.loads(result.stdout))
    assert _videos(store) == before  # pseudo-videos used to be written into the user's store
    hits = json.loads(run_cli("search", "universidade", "--json", store=store).stdout)
    assert hits and not any(h["video_id"].startswith("squad-") for h in hits)
    first, again = reports["faquad3.json"]
    assert first == again  # the other file did not overwrite this one's paragraphs
    assert first["modes"]["bm25"]["n"] > 0 and reports["squad3.json"][0]["modes"]["bm25"]["n"] > 0
