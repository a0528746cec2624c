"""The readiness dashboard's page: one page for administrators and officers (the reads are
``governance.dashboards.selectors``, the chart ``governance.dashboards.presenters``)."""

from __future__ import annotations

from typing import cast

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.models import User
from accounts.selectors import is_platform_admin
from governance.dashboards import presenters
from governance.dashboards import selectors as dashboard
from governance.kernel.errors import Forbidden
from registry import hooks as registry_hooks


@login_required
def readiness_page(request: HttpRequest) -> HttpResponse:
    """One page for administrators and officers: what needs attention, across their tenants."""
    user = cast(User, request.user)
    tenants = dashboard.readiness_tenants(user)
    if not tenants and not is_platform_admin(user):
        raise Forbidden(
            "The readiness dashboard is for administrators and privacy or security officers."
        )
    board = dashboard.readiness_dashboard(tenants, timezone.now(), viewer=user)
    # Who used each deprecated version lately (24 h and 7 d per tenant and application), from
    # the runtime's telemetry through the registry's hook: one query for the whole list.
    recent = registry_hooks.usage_by_version([d.version_id for d in board.deprecations])
    presenters.show_recent_usage(board, recent)
    return render(
        request,
        "governance/readiness.html",
        {
            "board": board,
            "chart": presenters.lead_time_chart(board.lead),
            "median_text": presenters.duration_text(board.lead.median_hours),
            "p90_text": presenters.duration_text(board.lead.p90_hours),
            "soon_days": settings.WAIVER_EXPIRING_SOON_DAYS,
            "flag_warning_days": settings.ROLLOUT_FLAG_WARNING_DAYS,
            "recovery": presenters.recovery_rows(board.recovery) if board.recovery else None,
        },
    )
