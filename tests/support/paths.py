"""Where the tests find their data: ``../shared/data`` beside the repository, and the repository's fixtures."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
SHARED_DATA = (REPO.parent / "shared" / "data").resolve()
SEED_DIR = SHARED_DATA.parent / "seed"
NURC = SHARED_DATA / "nurc-sp"
FIXTURES = TESTS / "fixtures"
QUESTIONS = TESTS / "data" / "nurc_questions.jsonl"


def shared(*parts: str) -> Path:
    """Path inside ../shared/data; a missing file is a test failure, not a skip."""
    path = SHARED_DATA.joinpath(*parts)
    assert path.exists(), f"test data missing: {path} (../shared/data must be beside the repo)"
    return path
