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
from lecture_rag.records import HIDE_URLS

T = TypeVar("T")


_ADAPTERS: dict[object, TypeAdapter[Any]] = {}


def _adapter(kind: object) -> TypeAdapter[Any]:
    """One TypeAdapter per record type (building one costs a schema walk)."""
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)  # type: ignore[arg-type]
    return adapter


def to_data(record: Any, *, hide_urls: bool = False) -> Any:
    """JSON-ready data (dicts, lists, numbers, strings) of a record or a list of records.

    ``hide_urls`` writes every video URL as ``oculto`` (the seed's ``URL: oculto``)
    and no player: how the record is shown, not a change to it.
    """
    if isinstance(record, list):
        return [to_data(item, hide_urls=hide_urls) for item in record]
    context = {HIDE_URLS: True} if hide_urls else None
    return _adapter(type(record)).dump_python(record, mode="json", by_alias=True, context=context)


def spliced(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    """``data`` with the dicts under ``keys`` spliced in at their place, for a record whose JSON is flat.

    A record may group its fields (a summary's metrics, a report's headline
    numbers) where its JSON lists them side by side; its serializer calls this.
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in keys:
            out.update(value or {})
        else:
            out[key] = value
    return out


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
