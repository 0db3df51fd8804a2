"""``python -m lecture_rag``: the same CLI as ``lecture-rag`` (a background compaction starts it this way)."""

from lecture_rag.cli import app

app(prog_name="lecture-rag")
