"""Input rules every service shares, so a field is refused the same way wherever it comes from."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from governance.kernel.errors import DomainError


def clean_text(
    value: str | None, field: str, *, required: bool = True, limit: int | None = 5000
) -> str:
    """``value`` stripped; refused (naming ``field``) when required and empty, too long, or
    holding a NUL character (which PostgreSQL cannot store)."""
    if value is not None and not isinstance(value, str):
        raise DomainError("Give text.", field=field)
    text = (value or "").strip()
    if required and not text:
        raise DomainError(f"The {field.replace('_', ' ')} is required.", field=field)
    if limit is not None and len(text) > limit:
        raise DomainError(f"At most {limit} characters.", field=field)
    if "\x00" in text:
        raise DomainError("NUL characters are not allowed.", field=field)
    return text


#: RFC 8785 (the form reports and events are hashed in) only holds integers this large exactly.
MAX_SAFE_INTEGER = 2**53 - 1


class JsonProblem(NamedTuple):
    """The first thing in a JSON value that is not stored: ``kind`` (``"nul"``, ``"not_finite"``
    or ``"unsafe_integer"``) and where (``path``: ``a.b[2]``; empty for the value itself)."""

    kind: str
    path: str


def json_problem(value: Any, *, safe_integers: bool = False, path: str = "") -> JsonProblem | None:
    """The one JSON-storability rule: the first thing in ``value`` (depth first, a key before
    its value) that JSON can carry but is not stored: a NUL character (PostgreSQL's jsonb
    has no room for it), a non-finite float, and with ``safe_integers`` an integer beyond
    ±(2**53 - 1). None when all of it is storable."""
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            found = json_problem(key, safe_integers=safe_integers, path=path) or json_problem(
                item, safe_integers=safe_integers, path=inner
            )
            if found is not None:
                return found
        return None
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = json_problem(item, safe_integers=safe_integers, path=f"{path}[{i}]")
            if found is not None:
                return found
        return None
    kind = _scalar_problem(value, safe_integers=safe_integers)
    return None if kind is None else JsonProblem(kind, path)


def _scalar_problem(value: Any, *, safe_integers: bool) -> str | None:
    if isinstance(value, str):
        return "nul" if "\x00" in value else None
    if isinstance(value, float):
        return None if math.isfinite(value) else "not_finite"
    if isinstance(value, int) and not isinstance(value, bool):
        return "unsafe_integer" if safe_integers and abs(value) > MAX_SAFE_INTEGER else None
    return None


#: How a service names a :class:`JsonProblem` (the field is named beside it).
_SERVICE_MESSAGES = {
    "nul": "NUL characters are not allowed.",
    "not_finite": "Numbers must be finite.",
}


def storable_json(value: Any, field: str) -> None:
    """Refuse, naming ``field``, JSON a service would store that :func:`json_problem` finds a
    problem in (NUL characters, non-finite floats)."""
    found = json_problem(value)
    if found is not None:
        raise DomainError(_SERVICE_MESSAGES[found.kind], field=field)
