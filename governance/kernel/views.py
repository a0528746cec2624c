"""One way for HTML views to meet the domain's errors.

- :class:`DomainErrorMiddleware`: a :class:`~governance.kernel.errors.NotFound` raised out of
  a page view is the 404 page, a :class:`~governance.kernel.errors.Forbidden` the 403 page
  with its reason. Views do not catch these to re-raise ``Http404``.
- :func:`submit`: "form → service → error on the form" in one call.
- :func:`attempt`: "service → refusal as a message" for a page with no form (a button).
- :func:`say_above`: a form's errors as the page's messages, for a form the page does not show.

The API does not pass through here: DRF's exception handler (``governance.api.exceptions``)
turns the same errors into JSON problems.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.views import defaults

from governance.kernel.errors import DomainError, Forbidden, NotFound
from governance.kernel.forms import form_error

T = TypeVar("T")


class DomainErrorMiddleware:
    """Maps ``NotFound`` to the 404 page and ``Forbidden`` to the 403 page (with its reason)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, NotFound):
            return defaults.page_not_found(request, Http404(exception.message))
        if isinstance(exception, Forbidden):
            return defaults.permission_denied(request, PermissionDenied(exception.message))
        return None


@dataclass(frozen=True)
class Submitted(Generic[T]):
    """What :func:`submit` did: the service's ``result`` when ``ok``, else the page's ``status``."""

    result: T | None
    status: int
    ok: bool


def submit(
    form: Any,
    action: Callable[[dict[str, Any]], T],
    *,
    aliases: dict[str, str] | None = None,
    invalid_status: int = 200,
) -> Submitted[T]:
    """Validate ``form`` and call ``action(form.cleaned_data)`` (the one service call).

    An invalid form answers ``invalid_status``. A refused call puts the service's message on
    the field it names (``aliases`` maps service field names to form field names), else
    above the form, and answers the error's status (400, 403, 404 or 409): nothing was
    written, since the service is atomic.
    """
    if not form.is_valid():
        return Submitted(None, invalid_status, ok=False)
    try:
        result = action(form.cleaned_data)
    except DomainError as exc:
        form_error(form, exc, aliases)
        return Submitted(None, exc.status_code, ok=False)
    return Submitted(result, 200, ok=True)


def attempt(request: HttpRequest, action: Callable[[], T]) -> Submitted[T]:
    """Call a service for a page with no form to show its refusal on (a button): a
    ``DomainError`` becomes an error message and the page's status (nothing was written:
    services are atomic)."""
    try:
        result = action()
    except DomainError as exc:
        messages.error(request, exc.message)
        return Submitted(None, exc.status_code, ok=False)
    return Submitted(result, 200, ok=True)


def say_above(request: HttpRequest, form: Any, *, unplaced_only: bool = False) -> None:
    """Move a bound form's errors to the page's messages (said above the page), for a form the
    page does not show: a button in a list, or a form this person is not offered.
    ``unplaced_only`` moves only the errors no field holds; the fields keep theirs."""
    for field in list(form.errors):
        if unplaced_only and field != NON_FIELD_ERRORS:
            continue
        for error in form.errors.pop(field):
            messages.error(request, str(error))
