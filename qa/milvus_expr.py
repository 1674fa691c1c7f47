"""Milvus filter expressions for qa's filters, with every string quoted safely.

Milvus takes a filter as a boolean expression over fields. A ``SearchFilter`` becomes
one over the passages' ``source``, ``doc_id`` and ``metadata`` (JSON) fields, so the
search applies it while ranking, as the embedded engine does.
"""

from __future__ import annotations

from collections.abc import Iterable

from qa.errors import InvalidInput
from qa.filters import SearchFilter, Value


def quoted(text: str) -> str:
    """``text`` as a Milvus string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def one_of(field: str, values: Iterable[str]) -> str:
    """``field`` equals one of ``values`` (strings)."""
    return f"{field} in [{', '.join(quoted(v) for v in values)}]"


def filter_expression(search_filter: SearchFilter) -> str:
    """The expression that passes exactly the passages ``search_filter`` allows."""
    parts = []
    if search_filter.source is not None:
        parts.append(f"source == {quoted(search_filter.source)}")
    if search_filter.doc_id_prefix is not None:
        parts.append(_prefix(search_filter.doc_id_prefix))
    parts += [_any_value(key, values) for key, values in search_filter.metadata]
    return " and ".join(f"({part})" for part in parts)


def _prefix(prefix: str) -> str:
    """Ids that begin with ``prefix``, as a range of strings: Milvus's LIKE has no escape for
    its wildcards ``%`` and ``_``, which ids may hold. Strings compare by code point."""
    last = prefix[-1]
    if ord(last) >= 0x10FFFF:
        return f"doc_id >= {quoted(prefix)}"
    return f"doc_id >= {quoted(prefix)} and doc_id < {quoted(prefix[:-1] + chr(ord(last) + 1))}"


def _any_value(key: str, values: tuple[Value, ...]) -> str:
    """Metadata ``key`` holds one of ``values``, or is a list holding one. Each JSON type is
    compared apart: Milvus refuses a list mixing them."""
    field = f"metadata[{quoted(key)}]"
    literals: dict[str, list[str]] = {}
    for kind, value in values:
        if kind == "null":
            raise InvalidInput(f"metadata {key!r}: the Milvus engine cannot match null values", code="invalid_filter")
        if kind == "text":
            literals.setdefault(kind, []).append(quoted(value))
        elif kind == "number":
            literals.setdefault(kind, []).append(str(int(value)) if float(value).is_integer() else repr(value))
        else:
            literals.setdefault("flag", []).append(kind)
    tests = []
    for same in literals.values():
        listed = ", ".join(same)
        tests += [f"{field} in [{listed}]", f"json_contains_any({field}, [{listed}])"]
    return " or ".join(tests)
