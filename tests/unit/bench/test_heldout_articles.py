"""The held-out bench's store of article recordings (``bench/heldout_store.py``): each FaQuAD article one
recording whose windows are its paragraphs, and every question pointing at its paragraph's window there.

Why it matters: the abstention is fitted on NURC questions asked in this store too, so a question whose
evidence named the wrong window (or a paragraph lost or duplicated) would teach it wrong labels.
"""

from __future__ import annotations

from pathlib import Path

from bench.heldout_store import ARTICLE_STEP, article_set, ensure_articles, squad_set

from lecture_rag.store import Store


def test_each_article_is_one_recording_and_each_question_points_at_its_paragraph(tmp_path: Path) -> None:
    paragraphs, questions = squad_set("faquad")
    recorded, asked = article_set("faquad")
    titles = list(dict.fromkeys(p.title for p in paragraphs))
    assert len(titles) > 1 and len(recorded) == len(paragraphs) and len(asked) == len(questions)
    assert {p.video_id for p in recorded} == {f"faquad-art{i:03d}" for i in range(len(titles))}

    with Store(tmp_path / "store") as store:
        assert ensure_articles(store, "faquad") == {p.video_id for p in recorded}
        assert len(store.list_videos()) == len(titles)
        assert store.segment_count() == len(paragraphs)
        text = {p.video_id: p.text for p in paragraphs}
        for before, after in zip(questions, asked, strict=True):
            (span,) = after.evidence
            windows = [s for s in store.segments(span.video_id) if s.start < span.end and s.end > span.start]
            assert [w.text for w in windows] == [text[before.evidence[0].video_id]]
        for video in store.list_videos():
            starts = [s.start for s in store.segments(video.video_id)]
            assert starts == [i * ARTICLE_STEP for i in range(len(starts))]
            assert video.title in titles

        # Unchanged articles are not written again: the store's segments keep their corpus ids.
        ids = store.corpus_ids()
        ensure_articles(store, "faquad")
        assert store.corpus_ids() == ids
