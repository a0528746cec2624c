"""Every refusal of authorization is logged: who asked for what, how, and what they were told."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

logger = logging.getLogger("governance.kernel.security")


class RefusalLogMiddleware:
    """Logs each 401 and 403 answer (API, pages, CSRF failures) at WARNING on ``governance.kernel.security``.

    Outermost but one, so it also sees the refusals that middleware (CSRF) gives.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code in (401, 403):
            user = getattr(request, "user", None)
            who = user.get_username() if user is not None and user.is_authenticated else "anonymous"
            logger.warning(
                "refused %s %s %s for %s from %s",
                response.status_code,
                request.method,
                request.path,
                who,
                request.META.get("REMOTE_ADDR", "-"),
            )
        return response
