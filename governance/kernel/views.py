"""One way for HTML views to meet the domain's errors.

- :class:`DomainErrorMiddleware`: a :class:`~governance.kernel.errors.NotFound` raised out of
  a page view is the 404 page, a :class:`~governance.kernel.errors.Forbidden` the 403 page
  with its reason. Views do not catch these to re-raise ``Http404``.
- :func:`submit`: "form → service → error on the form" in one call.
- :func:`attempt`: "service → refusal as a message" for a page with no form (a button).
- :func:`say_above`: a form's errors as the page's messages, for a form the page does not show.
- :func:`send_back` / :func:`sent_back` / :func:`bring_back`: post/redirect/get for a failed
  POST. The POST answers a redirect to the page the form is on, at the form's anchor, keeping
  the form's errors and its non-secret inputs in the session (never a password); the next GET
  of that page takes them (once) and shows the form again with its errors on top. Reloading
  then neither resubmits nor lands on the action URL.
- :func:`post_only`: an HTML action URL (POST only) answers a GET with a redirect to the page
  of its object instead of a blank 405.
- :func:`json_action`: a small JSON endpoint for a page's own script (passkey ceremonies):
  session and CSRF as for a form, a refusal as ``{field, detail, code}`` with its 4xx.

The API does not pass through here: DRF's exception handler (``governance.api.exceptions``)
turns the same errors into JSON problems.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast
from urllib.parse import urlsplit

from django import forms
from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
    QueryDict,
)
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.views import defaults

from governance.kernel.errors import DomainError, Forbidden, NotFound
from governance.kernel.forms import form_error

T = TypeVar("T")
F = TypeVar("F", bound=forms.Form)
V = TypeVar("V", bound=Callable[..., HttpResponseBase])


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
    #: The service's refusal, when it refused.
    error: DomainError | None = None


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
        return Submitted(None, exc.status_code, ok=False, error=exc)
    return Submitted(result, 200, ok=True)


def attempt(request: HttpRequest, action: Callable[[], T], *, say: bool = True) -> Submitted[T]:
    """Call a service for a page with no form to show its refusal on (a button): a
    ``DomainError`` becomes an error message (unless ``say`` is false: the caller sends it
    back with :func:`send_back`) and the page's status (nothing was written: services are
    atomic)."""
    try:
        result = action()
    except DomainError as exc:
        if say:
            messages.error(request, exc.message)
        return Submitted(None, exc.status_code, ok=False, error=exc)
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


# -- post/redirect/get ------------------------------------------------------------------------

#: The session key holding what the last failed POST sent back (one page, one form).
_SENT_BACK = "kernel.sent_back"
#: Inputs never kept in the session, whatever their widget.
#: A passkey's signed answer is single-use: never kept for a second try either.
_NEVER_KEPT = frozenset(
    {"csrfmiddlewaretoken", "password", "passkey_challenge", "passkey_credential"}
)


@dataclass(frozen=True)
class SentBack:
    """What a failed POST sent back to a page: the form's ``anchor``, its errors by field
    (``__all__`` for the form's own) and its non-secret inputs."""

    anchor: str
    errors: dict[str, list[str]]
    data: dict[str, list[str]]

    def messages(self) -> list[str]:
        """Every error, the form's own first."""
        first = self.errors.get(NON_FIELD_ERRORS, [])
        rest = [m for name, ms in self.errors.items() if name != NON_FIELD_ERRORS for m in ms]
        return first + rest

    def querydict(self) -> QueryDict:
        data = QueryDict(mutable=True)
        for name, values in self.data.items():
            data.setlist(name, values)
        return data


def _secret(form: Any, name: str) -> bool:
    bound = form.fields.get(name) if hasattr(form, "fields") else None
    return name in _NEVER_KEPT or (
        bound is not None and isinstance(bound.widget, forms.PasswordInput)
    )


def send_back(
    request: HttpRequest,
    to: str,
    anchor: str,
    *,
    form: Any = None,
    error: DomainError | str | None = None,
) -> HttpResponseRedirect:
    """Answer a failed POST with a redirect to ``to#anchor`` (the page and the form used),
    keeping ``form``'s errors and inputs (never a password) and ``error`` (a refusal with no
    form field to sit on) for the next GET of ``to`` (see :func:`sent_back`)."""
    errors: dict[str, list[str]] = {}
    data: dict[str, list[str]] = {}
    if form is not None:
        errors = {name: [str(m) for m in ms] for name, ms in form.errors.items()}
        raw = form.data
        pairs = raw.lists() if hasattr(raw, "lists") else ((k, [v]) for k, v in raw.items())
        data = {k: [str(v) for v in vs] for k, vs in pairs if not _secret(form, k)}
    if error is not None:
        message = error.message if isinstance(error, DomainError) else error
        if message not in errors.get(NON_FIELD_ERRORS, []) and not any(
            message in ms for ms in errors.values()
        ):
            errors.setdefault(NON_FIELD_ERRORS, []).append(message)
    page = to.split("#", 1)[0]
    request.session[_SENT_BACK] = {
        "path": urlsplit(page).path,
        "anchor": anchor,
        "errors": errors,
        "data": data,
    }
    return HttpResponseRedirect(f"{page}#{anchor}")


def sent_back(request: HttpRequest) -> SentBack | None:
    """Take what the last failed POST sent back to this page, once (a reload shows the page
    as it is); ``None`` when nothing was, or it was for another page."""
    if request.method != "GET":
        return None
    kept = request.session.get(_SENT_BACK)
    if not kept or kept.get("path") != request.path:
        return None
    del request.session[_SENT_BACK]
    return SentBack(anchor=kept["anchor"], errors=kept["errors"], data=kept["data"])


def bring_back(back: SentBack | None, anchor: str, make: Callable[[QueryDict], F]) -> F | None:
    """The form sent back to ``anchor``, made by ``make(inputs)``, showing the errors it had
    when it was posted (not validated again: a password left out is not a new error)."""
    if back is None or back.anchor != anchor:
        return None
    form = make(back.querydict())
    form.is_valid()
    form.errors.clear()
    for name, errors in back.errors.items():
        form.add_error(name if name in form.fields else None, list(errors))
    return form


def post_only(to: str, *keep: str) -> Callable[[V], V]:
    """``require_POST`` for an HTML action: a GET (a reload, a bookmark, a link followed)
    answers a redirect to the page of its object, the URL named ``to`` with the path
    parameters ``keep``; other methods stay 405."""

    def decorate(view: V) -> V:
        @functools.wraps(view)
        def inner(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method in ("GET", "HEAD"):
                return HttpResponseRedirect(reverse(to, kwargs={k: kwargs[k] for k in keep}))
            if request.method != "POST":
                return HttpResponseNotAllowed(["POST"])
            return view(request, *args, **kwargs)

        return cast(V, inner)

    return decorate


# -- JSON for a page's own script ---------------------------------------------------------------


def json_problem(
    detail: str, *, status: int, field: str | None = None, code: str = "invalid"
) -> JsonResponse:
    """A refusal as a page's script reads it: what went wrong, and the input at fault."""
    return JsonResponse({"field": field, "detail": detail, "code": code}, status=status)


def json_body(request: HttpRequest) -> dict[str, Any]:
    """The JSON object a page's script posted; a ``DomainError`` on ``body`` when it is not."""
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise DomainError("The body must be JSON.", field="body") from None
    if not isinstance(body, dict):
        raise DomainError("The body must be a JSON object.", field="body")
    return body


def json_action(
    aliases: dict[str, str] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., HttpResponseBase]]:
    """A JSON endpoint a page's script calls with the session (a passkey ceremony): POST only
    (with :func:`post_only` above it, a GET leads to the page the script is on), signed in,
    CSRF-checked by the middleware (the ``X-CSRFToken`` header). The view reads its body with
    :func:`json_body` (after finding its object, so a missing one is a 404 whatever was sent)
    and returns a dict (200) or ``(dict, status)``; a ``DomainError`` is ``{field, detail,
    code}`` with its 4xx (``aliases`` maps a service's field names to the body's), never a 500
    for bad input."""

    def decorate(view: Callable[..., Any]) -> Callable[..., HttpResponseBase]:
        @functools.wraps(view)
        def inner(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method != "POST":
                response = json_problem("Use POST.", status=405, code="method_not_allowed")
                response["Allow"] = "POST"
                return response
            if not request.user.is_authenticated:
                return json_problem("Sign in first.", status=401, code="not_authenticated")
            try:
                result = view(request, *args, **kwargs)
            except DomainError as exc:
                field = (aliases or {}).get(exc.field or "", exc.field)
                return json_problem(exc.message, status=exc.status_code, field=field, code=exc.code)
            payload, status = result if isinstance(result, tuple) else (result, 200)
            return JsonResponse(payload, status=status)

        return inner

    return decorate
