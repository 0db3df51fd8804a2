"""Searching as most tests do: a question and the request's options in, the hits out."""

from __future__ import annotations

from typing import Any

from lecture_rag.records import Hit
from lecture_rag.retrieve import Searcher, SearchRequest


def search_hits(searcher: Searcher, question: str, **options: Any) -> list[Hit]:
    """The hits of ``searcher`` for ``SearchRequest(question, **options)``, best first."""
    return list(searcher.search(SearchRequest(question, **options)).hits)
