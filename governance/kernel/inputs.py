"""Input rules every service shares, so a field is refused the same way wherever it comes from."""

from __future__ import annotations

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
