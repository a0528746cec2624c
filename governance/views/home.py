"""The home page, "what needs me": every floor's work waiting for the signed-in person (the
reads are ``governance.dashboards.home``), and the tenants and roles they hold."""

from __future__ import annotations

from typing import cast

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.models import User
from governance.dashboards.home import home_board


@login_required
def home(request: HttpRequest) -> HttpResponse:
    board = home_board(cast(User, request.user), timezone.now())
    return render(request, "governance/home.html", {"board": board})
