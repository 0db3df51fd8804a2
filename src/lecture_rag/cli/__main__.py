"""``python -m lecture_rag.cli``."""

from lecture_rag.cli import main

main()
