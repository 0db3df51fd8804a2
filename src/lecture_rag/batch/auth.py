"""Ray authentication for a cluster given by address: decided before Ray is imported (it reads the environment then).

Kept apart from :mod:`lecture_rag.batch` so that the Ray engine and the engine
factory both use it without importing each other.
"""

from __future__ import annotations

import os

from lecture_rag.config import BatchSettings


def ray_auth_env(settings: BatchSettings) -> None:
    """Send this machine's Ray token to a cluster given by address, unless ``RAY_AUTH_MODE`` says otherwise.

    Why: clusters started with ``ray start`` (Ray 2.5x) require the token when
    the head has one (``~/.ray/auth_token``), but a driver given an explicit
    address sends it only with ``RAY_AUTH_MODE=token``; without it the join
    retries until the timeout. Ray makes the same choice for a cluster it finds
    with ``auto``, and a cluster without authentication ignores the token.
    Ray reads the variable when it is imported, hence before the import.
    """
    address = settings.ray_address.strip() or os.environ.get("RAY_ADDRESS", "").strip()
    if address and "RAY_AUTH_MODE" not in os.environ and token_at_hand():
        os.environ["RAY_AUTH_MODE"] = "token"


def token_at_hand() -> bool:
    """Whether Ray would find an authentication token here (the places ``ray`` itself looks)."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return True
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.expanduser("~/.ray/auth_token")
    return os.path.isfile(path)
