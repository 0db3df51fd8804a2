"""Retrieve stage: dense (E5), BM25 and hybrid search over the published indexes."""

from lecture_rag.retrieve.search import MODES, Retriever, Searcher, Served, SharedRetriever, parse_mode, prepare_query
from lecture_rag.retrieve.watch import IndexStatus, IndexWatcher

__all__ = [
    "MODES",
    "IndexStatus",
    "IndexWatcher",
    "Retriever",
    "Searcher",
    "Served",
    "SharedRetriever",
    "parse_mode",
    "prepare_query",
]
