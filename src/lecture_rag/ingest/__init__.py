"""Ingest stage: transcript readers, speech-to-text, de-duplication and ~2-minute windows."""
