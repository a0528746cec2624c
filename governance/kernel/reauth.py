"""Deliberate acts: a person confirms their password unless they did so in the last few minutes.

Sign-off, promotion, rollback, the safety switch, deprecating or retiring a version, revoking
a role, renewing, revoking or countersigning a waiver and every rollout transition ask for it
on the HTML pages (the API and CLI use tokens).
One rule for all of them: :func:`require_password` (a service-style refusal, for ``attempt``
and ``submit``) and :func:`password_refusal` (the error on a form's password field).
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate

from governance.kernel.errors import DomainError, Forbidden

SESSION_KEY = "reviews_reauth_at"
PASSWORD_MISSING = "Confirm your password: it is a deliberate act."  # noqa: S105 (a message)
PASSWORD_WRONG = "That is not your password. Nothing changed."  # noqa: S105 (a message)


def recently_confirmed(request: Any) -> bool:
    """True if this browser session confirmed the user's password within REVIEWS_REAUTH_SECONDS."""
    session = getattr(request, "session", None)
    user = getattr(request, "user", None)
    if session is None or user is None or not user.is_authenticated:
        return False
    mark = session.get(SESSION_KEY)
    if not isinstance(mark, dict) or mark.get("user") != str(user.pk):
        return False  # confirmed by someone else (or in an older format): ask again
    at = mark.get("at")
    return isinstance(at, int | float) and time.time() - at < settings.REVIEWS_REAUTH_SECONDS


def confirm(request: Any, password: str | None) -> bool:
    """Check the signed-in user's password; on success remember the time in the session (if any)."""
    user = request.user
    if not password or not user.is_authenticated:
        return False
    # authenticate() goes through django-axes, so guessing here counts as failed logins too.
    ok = authenticate(request, username=user.get_username(), password=password) is not None
    if ok and getattr(request, "session", None) is not None:
        request.session[SESSION_KEY] = {"user": str(user.pk), "at": time.time()}
    return ok


def require_password(request: Any, password: str | None) -> None:
    """Refuse a deliberate act without a fresh password: nothing to do when the session
    confirmed it lately; else a missing password is a ``DomainError`` (400) and a wrong one
    ``Forbidden`` (403), both on the ``password`` field. Call it before the service, inside
    ``attempt``/``submit`` so the refusal is said on the page."""
    if recently_confirmed(request):
        return
    if not password:
        raise DomainError(PASSWORD_MISSING, field="password")
    if not confirm(request, password):
        raise Forbidden(PASSWORD_WRONG, field="password")


def password_refusal(request: Any, form: Any) -> int | None:
    """For a bound, valid form with a password field (``PasswordMixin``): None when the password
    is confirmed (now or lately); else the page's status, with the error on the password field."""
    if not getattr(form, "needs_password", False) or recently_confirmed(request):
        return None
    try:
        require_password(request, form.cleaned_data.get("password", ""))
    except DomainError as exc:
        form.add_error("password", exc.message)
        return exc.status_code
    return None


class _Sessionless:
    """A token caller's request as this module sees it: no session to remember a confirmation in.

    A token is not a browser session, so a confirmation must neither be read from nor
    left in whatever cookie came along with it.
    """

    session = None

    def __init__(self, request: Any) -> None:
        self._wrapped = request

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)


def require_password_api(request: Any, password: str, *, act: str) -> None:
    """The API's deliberate acts (``act``: "Signing off", "Registering a passkey"): the caller's
    password, unless their browser session confirmed it lately. A token caller always sends it.
    Refused with 403 ``password_required`` on ``password``."""
    from rest_framework.authentication import SessionAuthentication

    via_session = isinstance(
        getattr(request, "successful_authenticator", None), SessionAuthentication
    )
    if via_session and recently_confirmed(request):
        return
    if not password:
        raise Forbidden(
            f"{act} needs your current password: send it as 'password'.",
            field="password",
            code="password_required",
        )
    if not confirm(request if via_session else _Sessionless(request), password):
        raise Forbidden(
            "That is not your password ('password'); nothing was recorded.",
            field="password",
            code="password_required",
        )
