"""Index stage: the embedded store (SQLite), vector and BM25 indexes."""
