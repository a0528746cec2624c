"""Sign-off is a deliberate act: the approver confirms their password unless they did so in the last few minutes."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate

SESSION_KEY = "reviews_reauth_at"


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
