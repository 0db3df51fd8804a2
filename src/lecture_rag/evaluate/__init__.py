"""Evaluate stage."""
