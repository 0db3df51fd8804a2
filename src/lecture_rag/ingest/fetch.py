"""What ``ingest URL`` may fetch: which addresses, how many bytes, for how long.

A video page chooses where its caption track and media live, and the
machine running ``ingest`` can often reach what the outside cannot (its own
services on ``127.0.0.1``, an intranet, the cloud's metadata address
``169.254.169.254``). Their answers stored as a lecture would be readable by
anyone who can search the corpus, so loopback, private, link-local and other
non-public addresses are refused, at every redirect too, unless
``[ingest] allow_private_urls`` says otherwise. A server that never stops
sending, or sends one byte every few seconds, is cut off by a size cap and
an overall deadline, not only by the per-read socket timeout (which a
trickle never trips).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit

from lecture_rag.errors import IngestError

#: Seconds one read may wait for the next bytes (the deadline bounds the whole fetch).
_READ_TIMEOUT = 30.0
_CHUNK = 1 << 16
_ALLOW_HINT = "se o endereço é mesmo seu (uma rede interna), permita com [ingest] allow_private_urls = true"


def check_address(url: str, *, allow_private: bool) -> None:
    """Refuse ``url`` unless it is http(s) on a host whose every address is public (or private ones are allowed).

    Every address the name resolves to is checked: a name with one public
    and one loopback address could be connected either way.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise IngestError(f"endereço recusado ({url[:200]}): só http:// e https:// são buscados")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 0, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise IngestError(f"não foi possível encontrar o servidor {parts.hostname} ({exc})") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not _public(address):
            raise IngestError(
                f"endereço recusado: {parts.hostname} é um endereço local, privado ou reservado ({address}), "
                f"e o que ele responde não deve virar uma aula pesquisável; {_ALLOW_HINT}"
            )


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to an address :func:`check_address` accepts."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    def redirect_request(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        check_address(newurl, allow_private=self.allow_private)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """How much one fetch may bring and for how long, and whether private addresses may answer."""

    max_bytes: int
    deadline_seconds: float
    allow_private: bool


def fetch_bytes(url: str, limits: FetchLimits, headers: Mapping[str, str], what: str) -> bytes:
    """The body at ``url``, within ``limits``; :class:`IngestError` naming ``what`` otherwise.

    The fetch runs in a daemon thread so that the deadline also covers a
    server trickling its status line or headers, which no socket timeout
    catches; past the deadline it is abandoned and stops at its next read.
    """
    check_address(url, allow_private=limits.allow_private)
    done: dict[str, Any] = {}
    stop = threading.Event()
    started = time.monotonic()

    def work() -> None:
        try:
            done["data"] = _read(url, limits, headers, stop)
        except BaseException as exc:  # handed to the caller's thread
            done["error"] = exc

    worker = threading.Thread(target=work, name="lecture-rag-fetch", daemon=True)
    worker.start()
    worker.join(limits.deadline_seconds)
    if worker.is_alive() or done.get("error") is _DEADLINE:
        stop.set()
        raise IngestError(
            f"{what}: o servidor não terminou de enviar em {limits.deadline_seconds:g} s "
            f"({time.monotonic() - started:.0f} s de espera). Tente mais tarde ou aumente "
            "[ingest] fetch_deadline_seconds"
        )
    if "error" in done:
        raise done["error"]
    return bytes(done["data"])


_DEADLINE = IngestError("prazo esgotado")


def _read(url: str, limits: FetchLimits, headers: Mapping[str, str], stop: threading.Event) -> bytes:
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
        _CheckedRedirects(limits.allow_private),
    ):
        opener.add_handler(handler)
    request = urllib.request.Request(url, headers={**headers, "Accept-Encoding": "identity"})
    deadline = time.monotonic() + limits.deadline_seconds
    data = bytearray()
    with opener.open(request, timeout=min(_READ_TIMEOUT, limits.deadline_seconds)) as response:
        while not stop.is_set():
            if time.monotonic() > deadline:
                raise _DEADLINE
            chunk = response.read1(_CHUNK)
            if not chunk:
                return bytes(data)
            data += chunk
            if len(data) > limits.max_bytes:
                raise IngestError(f"grande demais (mais de {limits.max_bytes // 2**20} MB)")
    raise _DEADLINE
