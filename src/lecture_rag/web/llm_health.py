"""What the header says of the answer LLM: a live probe, cached, never in the way of a page.

Students read the badge before they ask, so it must say whether the LLM
answers *now*, not whether the last question's did: the server's model list
is probed (bounded by ``[llm] connect_timeout``) at most once every
:data:`PROBE_EVERY_S`, by ``GET /api/llm`` which the pages poll. Pages render
with whatever is cached ("verificando" before the first probe), so a dead
endpoint never delays a page. A question whose LLM failed since the last probe
also makes it "indisponível" until an answer succeeds: a server that lists its
models but never generates is no more available to a student than a dead one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Literal

from lecture_rag.llm import LLM
from lecture_rag.llm.check import reachable

State = Literal["none", "checking", "ok", "down"]
#: Seconds a probe's verdict is reused (pages poll at the same pace).
PROBE_EVERY_S = 30.0
#: What the badge says, by state (student-facing: no variable names).
LABELS: dict[State, str] = {
    "none": "LLM: não configurado",
    "checking": "LLM: verificando…",
    "ok": "LLM: disponível",
    "down": "LLM: indisponível",
}


@dataclass
class LLMHealth:
    """The answer LLM's health: the last probe's verdict and whether the last answer failed after it."""

    llm: LLM | None
    every_s: float = PROBE_EVERY_S
    _probed_at: float | None = None
    _reachable: bool = False
    _answer_failed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def state(self) -> State:
        """The cached verdict, at once (what a page renders)."""
        if self.llm is None:
            return "none"
        if self._probed_at is None:
            return "checking"
        return "ok" if self._reachable and not self._answer_failed else "down"

    def refresh(self) -> State:
        """The verdict, probing first when the cached one is older than ``every_s`` (one probe at a time)."""
        if self.llm is None:
            return "none"
        with self._lock:
            if self._probed_at is None or time.monotonic() - self._probed_at >= self.every_s:
                self._reachable = reachable(self.llm)
                self._probed_at = time.monotonic()
        return self.state()

    def answered(self, failed: bool) -> None:
        """A question's LLM answered (or failed): a failure holds the badge at "indisponível" until one succeeds."""
        self._answer_failed = failed
        if not failed:
            self._reachable = True
