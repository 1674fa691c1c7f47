"""Which documents a search may return: by source, by id prefix, by metadata values.

A filter is validated data, parsed from a JSON object (``POST /api/search``'s
``filter``) or from URL parameters (``source=``, ``doc_id_prefix=``, ``meta.KEY=``).
Every part given must match; a key given several values matches any of them, and a
stored list matches when one of its items does. Searches apply it inside retrieval
(see ``Searcher``), so the k results all match it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from qa.errors import InvalidInput

MAX_KEYS = 20
MAX_VALUES = 100
MAX_CHARS = 1000
FIELDS = ("source", "doc_id_prefix", "metadata")
META_PREFIX = "meta."
# A metadata value as compared: its JSON type ("text", "number", "true", "false", "null")
# and value, so that 1, 1.0, true and "1" stay apart.
Value = tuple[str, Any]


@dataclass(frozen=True)
class SearchFilter:
    """A validated filter; hashable, so a search can keep what it matched."""

    source: str | None = None
    doc_id_prefix: str | None = None
    metadata: tuple[tuple[str, tuple[Value, ...]], ...] = ()

    @classmethod
    def from_json(cls, given: Any) -> SearchFilter | None:
        """From a JSON object such as ``{"source": "...", "metadata": {"year": [2021, 2022]}}``;
        None for none or ``{}``; a part that is null is not given. Raises ``InvalidInput``
        (``invalid_filter``)."""
        if given is None:
            return None
        if not isinstance(given, dict):
            raise _invalid('the filter must be an object such as {"source": "...", "metadata": {"KEY": "VALUE"}}')
        unknown = sorted(set(given) - set(FIELDS))
        if unknown:
            raise _invalid(f"the filter has no field {unknown[0]!r}; it takes {', '.join(FIELDS)}")
        metadata = given.get("metadata")
        metadata = {} if metadata is None else metadata
        if not isinstance(metadata, dict):
            raise _invalid('filter.metadata must be an object such as {"KEY": "VALUE"} or {"KEY": ["A", "B"]}')
        pairs = {key: _json_values(key, value) for key, value in metadata.items()}
        return cls._made(_text(given.get("source"), "source"), _text(given.get("doc_id_prefix"), "doc_id_prefix"),
                         pairs)

    @classmethod
    def from_query(cls, args: Mapping[str, list[str]]) -> SearchFilter | None:
        """From URL parameters: ``source``, ``doc_id_prefix`` and ``meta.KEY`` (repeated
        for any of several values). A URL value is text, so ``meta.year=2021`` also
        matches the number 2021, and ``true``, ``false`` and ``null`` their JSON values."""
        for name in ("source", "doc_id_prefix"):
            if len(args.get(name, [])) > 1:
                raise _invalid(f"give {name} once")
        source, prefix = (_text(args[n][0], n) if args.get(n) else None for n in ("source", "doc_id_prefix"))
        pairs = {
            name[len(META_PREFIX) :]: _url_values(name[len(META_PREFIX) :], values)
            for name, values in args.items() if name.startswith(META_PREFIX)
        }
        return cls._made(source, prefix, pairs)

    @classmethod
    def _made(cls, source: str | None, prefix: str | None, pairs: dict[str, tuple[Value, ...]]) -> SearchFilter | None:
        if len(pairs) > MAX_KEYS:
            raise _invalid(f"the filter names {len(pairs)} metadata keys; the limit is {MAX_KEYS}")
        for key in pairs:
            _check_key(key)
        found = cls(source, prefix, tuple(sorted(pairs.items())))
        return found if found != cls() else None

    def as_json(self) -> dict[str, Any]:
        """The filter as ``from_json`` takes it (each key's values as a list)."""
        out: dict[str, Any] = {}
        if self.source is not None:
            out["source"] = self.source
        if self.doc_id_prefix is not None:
            out["doc_id_prefix"] = self.doc_id_prefix
        if self.metadata:
            out["metadata"] = {key: [_plain(v) for v in values] for key, values in self.metadata}
        return out


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, code="invalid_filter")


def _text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_CHARS:
        raise _invalid(f"{name} must be a non-empty string of at most {MAX_CHARS} characters")
    return value


def _check_key(key: str) -> None:
    if not key or len(key) > MAX_CHARS:
        raise _invalid(f"a metadata key must be a non-empty string of at most {MAX_CHARS} characters")


def _json_values(key: str, value: Any) -> tuple[Value, ...]:
    values = value if isinstance(value, list) else [value]
    if not values or len(values) > MAX_VALUES:
        raise _invalid(f"metadata {key!r} needs from 1 to {MAX_VALUES} values")
    typed = []
    for item in values:
        if isinstance(item, (dict, list)) or (isinstance(item, float) and not math.isfinite(item)):
            raise _invalid(f"metadata {key!r}: each value must be a string, number, true, false or null")
        if isinstance(item, str) and len(item) > MAX_CHARS:
            raise _invalid(f"metadata {key!r}: a value is over {MAX_CHARS} characters")
        typed.append(_typed(item))
    return tuple(dict.fromkeys(typed))


def _url_values(key: str, values: Iterable[str]) -> tuple[Value, ...]:
    """Each URL value as text, and as the JSON number or literal it also spells."""
    typed: list[Value] = []
    for value in values:
        typed.append(_json_values(key, value)[0])
        if value in ("true", "false", "null"):
            typed.append(_typed(json.loads(value)))
        else:
            try:
                number = float(value)
            except ValueError:
                continue
            if math.isfinite(number) and value.strip() == value:
                typed.append(("number", number))
    found = tuple(dict.fromkeys(typed))
    if len(found) > 3 * MAX_VALUES:
        raise _invalid(f"metadata {key!r} needs from 1 to {MAX_VALUES} values")
    return found


def _typed(value: Any) -> Value:
    if value is True or value is False or value is None:
        return (json.dumps(value), None)
    if isinstance(value, (int, float)):
        try:
            return ("number", float(value))
        except OverflowError:  # an integer past any float: no stored number equals it
            raise _invalid(f"the number {value} is too large") from None
    return ("text", value)


def _plain(value: Value) -> Any:
    kind, item = value
    if kind == "number":
        return int(item) if float(item).is_integer() and abs(item) < 2**53 else item
    return item if kind == "text" else json.loads(kind)
