"""Helpers shared by the test suite: paths to test data, running the CLI as a user would, real local servers."""
