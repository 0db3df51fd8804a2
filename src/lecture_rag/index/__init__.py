"""Index stage: embed the corpus (with the cache) and build, publish and load the vector and BM25 indexes."""
