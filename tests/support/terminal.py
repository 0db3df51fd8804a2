"""A ``lecture-rag`` command on a real pseudo-terminal, driven key by key as a person types (the annotator)."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import termios
import time
from pathlib import Path

from tests.support.cli import EXE, cli_env


class Terminal:
    """The annotator on a real pseudo-terminal: keys arrive one at a time, prompts read whole lines."""

    ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")

    def __init__(self, args: list[str], store: Path) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [EXE, *args], stdin=slave, stdout=slave, stderr=slave, env=cli_env(store, {"TERM": "xterm"}),
            start_new_session=True,
        )  # fmt: skip
        os.close(slave)
        self.seen = ""

    def expect(self, text: str, timeout: float = 120) -> str:
        """Everything printed since the last call, once ``text`` is in it (the screen is read as plain text)."""
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            assert time.monotonic() < deadline, f"{text!r} não apareceu; saída: {self.seen[-2000:]!r}"
            ready, _, _ = select.select([self.master], [], [], 1)
            if ready:
                try:
                    self.seen += self.ANSI.sub("", os.read(self.master, 65536).decode("utf-8", "replace"))
                except OSError:  # the child closed the terminal
                    break
        assert text in self.seen, self.seen[-2000:]
        out, self.seen = self.seen, ""
        return " ".join(out.split())

    def send(self, keys: str) -> None:
        os.write(self.master, keys.encode("utf-8"))

    def key(self, key: str, timeout: float = 60) -> None:
        """One key, once the annotator reads keys one at a time (the terminal out of line mode).

        Sent earlier, under load, the key would land in line mode: echoed, held until Enter, never read.
        """
        deadline = time.monotonic() + timeout
        while termios.tcgetattr(self.master)[3] & termios.ICANON:
            assert time.monotonic() < deadline, "o anotador não passou a ler teclas"
            time.sleep(0.02)
        self.send(key)

    def label(self, key: str) -> str:
        """Label the record on screen with ``key``; returns the next record's screen."""
        self.key(key)
        self.expect(f"Gravado: {key.upper()}")
        return self.expect("q = sair")

    def comment(self, text: str) -> str:
        """Write ``text`` as the record's comment ('o', then the prompt); returns the record's screen after it."""
        self.key("o")
        self.expect("Observação (Enter mantém")
        self.send(text + "\r")
        return self.expect("q = sair")

    def close(self) -> int:
        code = self.proc.wait(timeout=60)
        os.close(self.master)
        return code

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        """A test that failed half-way leaves no annotator running."""
        if self.proc.poll() is None:
            self.proc.kill()
