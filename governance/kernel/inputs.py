"""Input rules every service shares, so a field is refused the same way wherever it comes from."""

from __future__ import annotations

import math
from typing import Any

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


def storable_json(value: Any, field: str) -> None:
    """The one rule for JSON a service stores: refuse what JSON can carry but the database
    cannot store (NUL characters, non-finite floats), naming ``field``."""
    if isinstance(value, str):
        if "\x00" in value:
            raise DomainError("NUL characters are not allowed.", field=field)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise DomainError("Numbers must be finite.", field=field)
    elif isinstance(value, dict):
        for key, item in value.items():
            storable_json(key, field)
            storable_json(item, field)
    elif isinstance(value, list | tuple):
        for item in value:
            storable_json(item, field)
