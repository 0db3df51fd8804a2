"""Retrieve stage: dense (E5), BM25 and hybrid search over the published indexes."""

from lecture_rag.retrieve.search import MODES, Retriever, Searcher, SharedRetriever, parse_mode, prepare_query

__all__ = ["MODES", "Retriever", "Searcher", "SharedRetriever", "parse_mode", "prepare_query"]
