"""Retrieve stage: embedders and search (dense, BM25, hybrid)."""
