"""The home page, "what needs me": every floor's work waiting for the signed-in person (the
reads are ``governance.dashboards.home``), and the tenants and roles they hold; and
/favicon.ico, which browsers ask for whatever the page links."""

from __future__ import annotations

from typing import cast

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.shortcuts import render
from django.templatetags.static import static
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.models import User
from governance.dashboards.home import home_board


@login_required
def home(request: HttpRequest) -> HttpResponse:
    board = home_board(cast(User, request.user), timezone.now())
    return render(request, "governance/home.html", {"board": board})


@require_GET
def favicon(_request: HttpRequest) -> HttpResponse:
    """The site's icon is static/favicon.svg (base.html links it); /favicon.ico points there.

    Resolved per request, so the hashed name of the production storage is read when asked.
    """
    return HttpResponsePermanentRedirect(static("favicon.svg"))
