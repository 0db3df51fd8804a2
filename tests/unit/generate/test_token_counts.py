"""Token counts of an OpenAI-compatible server are deterministic under load (issue 24, judges under concurrency).

A real HTTP server stands in for a shared llama.cpp server: its ``/tokenize``
answers one request at a time, slowly, as a busy server does, so concurrent
counts queue past the client's timeout.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from lecture_rag.errors import LLMError
from lecture_rag.llm import estimate_tokens
from lecture_rag.llm.openai import OpenAICompatibleLLM

TEXT = "as pinturas rupestres de Altamira mostram bisontes " * 40


class BusyTokenizer:
    """``/tokenize`` (llama.cpp's shape: one token per word here) served one at a time, ``delay_s`` each."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.calls = 0
        self._one_at_a_time = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
                if self.path != "/tokenize":
                    self._reply(404, {"error": "not found"})
                    return
                with outer._one_at_a_time:
                    outer.calls += 1
                    time.sleep(outer.delay_s)
                self._reply(200, {"tokens": list(range(len(str(body.get("content", "")).split())))})

            def _reply(self, status: int, data: dict[str, Any]) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def busy() -> Iterator[BusyTokenizer]:
    server = BusyTokenizer(delay_s=0.15)
    yield server
    server.close()


def test_concurrent_counts_on_a_busy_server_all_use_its_tokenizer(busy: BusyTokenizer) -> None:
    """12 threads count at once (the first count probes the server): the queue passes the 1 s timeout.
    Before: a probe or a count that timed out silently became an estimate, so one text got two counts."""
    llm = OpenAICompatibleLLM(busy.base_url, model="m", timeout=1.0, retries=6)
    with ThreadPoolExecutor(12) as pool:
        counts = list(pool.map(lambda _: llm.count_tokens(TEXT), range(12)))
    assert set(counts) == {len(TEXT.split())}, counts
    assert estimate_tokens(TEXT) != len(TEXT.split())
    assert llm.tokenizer == "llama.cpp"


def test_a_tokenizer_that_stops_answering_fails_loudly(busy: BusyTokenizer) -> None:
    """Before: a count that timed out returned an estimate without a word."""
    llm = OpenAICompatibleLLM(busy.base_url, model="m", timeout=1.0, retries=1)
    assert llm.count_tokens(TEXT) == len(TEXT.split())
    busy.delay_s = 3.0
    with pytest.raises(LLMError):
        llm.count_tokens(TEXT)
