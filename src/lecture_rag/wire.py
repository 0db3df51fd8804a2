"""Records ↔ JSON: the one wire format of ``--json`` output, run storage, reports and the web API.

The shape is the records' own (:mod:`lecture_rag.records`), computed fields
included, so there is nothing to keep in step by hand: a field added to
:class:`~lecture_rag.records.Answer` appears in ``ask --format json``, in a
stored run and in ``/api/ask`` at once. Reading tolerates keys it does not
know (older or newer stored runs), never invents missing required ones.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from lecture_rag.errors import StoreError

T = TypeVar("T")

HIDDEN = "oculto"
_NO_PLAYER = {"kind": "none", "src": None, "youtube_id": None}


_ADAPTERS: dict[object, TypeAdapter[Any]] = {}


def _adapter(kind: object) -> TypeAdapter[Any]:
    """One TypeAdapter per record type (building one costs a schema walk)."""
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)  # type: ignore[arg-type]
    return adapter


def to_data(record: Any) -> Any:
    """JSON-ready data (dicts, lists, numbers, strings) of a record or a list of records."""
    if isinstance(record, list):
        return [to_data(item) for item in record]
    return _adapter(type(record)).dump_python(record, mode="json", by_alias=True)


def from_data(kind: type[T], data: Any) -> T:
    """The record of type ``kind`` that ``data`` (from :func:`to_data` or a stored run) describes."""
    try:
        value: T = _adapter(kind).validate_python(data)
    except ValidationError as exc:
        raise StoreError(
            f"Dados gravados em formato inesperado para {kind.__name__}: {exc.errors()[0]['msg']} "
            f"em {'.'.join(str(p) for p in exc.errors()[0]['loc'])}."
        ) from exc
    return value


def dumps(record: Any, *, indent: int | None = None) -> str:
    """One record as JSON text (UTF-8 characters kept, not escaped)."""
    return json.dumps(to_data(record), ensure_ascii=False, indent=indent)


def loads(kind: type[T], text: str) -> T:
    """Inverse of :func:`dumps`."""
    return from_data(kind, json.loads(text))


def _hidden_hit(hit: dict[str, Any]) -> dict[str, Any]:
    return {**hit, "url": HIDDEN, "video_url": HIDDEN, "player": _NO_PLAYER}


def hide_urls(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer's JSON with every URL replaced by ``oculto``, as the seed hides them."""
    out = dict(answer)
    out["hits"] = [_hidden_hit(h) for h in answer.get("hits", [])]
    out["context"] = [_hidden_hit(h) for h in answer.get("context", [])]
    out["references"] = [
        {**r, "url": HIDDEN, "player": _NO_PLAYER, "times": [{**t, "url": HIDDEN} for t in r["times"]]}
        for r in answer.get("references", [])
    ]
    return out
