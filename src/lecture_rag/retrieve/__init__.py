"""Retrieve stage: dense (E5), BM25 and hybrid search over the published indexes."""

from lecture_rag.retrieve.search import (
    MODES,
    Retriever,
    Searcher,
    SearchRequest,
    SearchResult,
    SharedRetriever,
    parse_mode,
    prepare_query,
)
from lecture_rag.retrieve.served import Served, ServedIndex
from lecture_rag.retrieve.watch import IndexStatus, IndexWatcher

__all__ = [
    "MODES",
    "IndexStatus",
    "IndexWatcher",
    "Retriever",
    "SearchRequest",
    "SearchResult",
    "Searcher",
    "Served",
    "ServedIndex",
    "SharedRetriever",
    "parse_mode",
    "prepare_query",
]
