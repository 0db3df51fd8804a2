"""Joining a Ray cluster that is not there: one clear error in seconds, before anything is opened.

A module of its own: the Ray session that other modules hold would be used instead of joining.
"""

from __future__ import annotations

import pytest

from lecture_rag.batch import open_engine
from lecture_rag.config import BatchSettings
from lecture_rag.errors import LectureRagError
from tests.support.servers import free_port


def test_an_address_that_does_not_answer_is_one_clear_error() -> None:
    """Refused in about a second (a TCP probe), never Ray's minutes of retries."""
    address = f"127.0.0.1:{free_port()}"
    with (
        pytest.raises(LectureRagError, match=f"cluster Ray em {address} não respondeu") as err,
        open_engine(BatchSettings(engine="ray", ray_address=address)),
    ):
        pass
    assert "Nada foi gravado" in str(err.value)
    with (
        pytest.raises(LectureRagError, match="Endereço do Ray inválido"),
        open_engine(BatchSettings(engine="ray", ray_address="sem-porta")),
    ):
        pass
