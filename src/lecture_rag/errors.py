"""User-facing errors.

Every error the CLI shows derives from :class:`LectureRagError`: the message
says what was wrong and what to do, so the CLI can print it without a traceback.
They live at the bottom of the layers because every stage raises them.
"""

from __future__ import annotations


class LectureRagError(Exception):
    """Base class for errors that are the user's input, not a bug."""


class IngestError(LectureRagError):
    """A transcript or media file could not be read into cues."""


class StoreError(LectureRagError):
    """The store is missing, corrupt or inconsistent with the request."""


class IndexMismatchError(StoreError):
    """The index was built with another embedder than the one asked for."""


class ConfigError(LectureRagError):
    """A setting (config.toml or LECTURE_RAG_* variable) has a value that cannot be used."""


class LLMError(LectureRagError):
    """An LLM or OpenAI-compatible server is unreachable, refused the request or is misconfigured."""
