"""lecture-rag: question answering over university video lectures.

The package is laid out by stage of the data flow:
``ingest`` (transcripts → cues → segments), ``index`` (store, vectors, BM25),
``retrieve`` (embedders, search), ``generate`` (LLM answers), ``evaluate``
(judges, metrics, agreement) and ``report`` (the seed's record format).
"""

__version__ = "0.1.0"
