"""The one domain error type services raise; the API and forms turn it into a clear 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class DomainError(Exception):
    """A rule was broken. ``field`` names the input at fault, when there is one."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Forbidden(DomainError):
    status_code = 403
    code = "permission_denied"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


@contextmanager
def fields_renamed(names: dict[str, str]) -> Iterator[None]:
    """Re-raise a DomainError whose ``field`` is a service's name for an input under the name
    the caller sent it as (``{"challenge": "passkey.challenge_id"}``); same class, same code."""
    try:
        yield
    except DomainError as exc:
        if exc.field not in names:
            raise
        raise type(exc)(exc.message, field=names[exc.field], code=exc.code) from exc
