"""The governance overview and the event log's pages: the feed, one entry, verification runs
and the metrics page."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.selectors import access_by_tenant
from governance.dashboards.selectors import OVERSIGHT_ROLES
from governance.filtersets import EventFilterSet
from governance.health import readiness
from governance.kernel.events import selectors as event_selectors
from governance.kernel.events.services import verification_start
from governance.kernel.permissions import can_start_verification
from governance.kernel.views import attempt, post_only

FEED_PAGE_SIZE = 50


@login_required
def governance_index(request: HttpRequest) -> HttpResponse:
    access = access_by_tenant(request.user)
    return render(
        request,
        "governance/index.html",
        {
            "checks": readiness(),
            "access": access,
            "can_see_readiness": any(OVERSIGHT_ROLES.intersection(a.roles) for a in access),
            "latest_checkpoint": event_selectors.latest_checkpoint(),
            "latest_verification": event_selectors.latest_verification_for(request.user),
            "can_verify": can_start_verification(request.user),
        },
    )


@login_required
def event_feed(request: HttpRequest) -> HttpResponse:
    """The log, newest first, filtered; keyset pagination on the sequence number."""
    filters = EventFilterSet(
        request.GET or None, queryset=event_selectors.events_visible_to(request.user)
    )
    if filters.is_bound and not filters.is_valid():
        rows: list[Any] = []
    else:
        rows = list(filters.qs.order_by("-seq")[: FEED_PAGE_SIZE + 1])
    has_more = len(rows) > FEED_PAGE_SIZE
    rows = rows[:FEED_PAGE_SIZE]
    next_query = None
    if has_more:
        params = request.GET.copy()
        params["before"] = str(rows[-1].seq)
        next_query = params.urlencode()
    return render(
        request,
        "governance/events.html",
        {
            "filters": filters,
            "rows": [(event, event_selectors.subject_url(event)) for event in rows],
            "next_query": next_query,
            "status": 400 if filters.errors else 200,
        },
        status=400 if filters.is_bound and filters.errors else 200,
    )


@login_required
def event_detail(request: HttpRequest, seq: int) -> HttpResponse:
    event = event_selectors.event_for_user(request.user, seq)  # NotFound: the 404 page
    ok, detail = event_selectors.entry_status(event)
    return render(
        request,
        "governance/event_detail.html",
        {
            "event": event,
            "verified": ok,
            "verification_detail": detail,
            "subject_url": event_selectors.subject_url(event),
            "header_text": bytes(event.header).decode(),
            "payload_text": bytes(event.payload_bytes).decode(),
        },
    )


@login_required
@post_only("governance")
def verify_start(request: HttpRequest) -> HttpResponse:
    done = attempt(request, lambda: verification_start(actor=request.user))
    if done.result is None:  # a button, not a form: the refusal is a message on the overview
        return redirect("governance")
    return redirect(done.result)


@login_required
def verification_detail(request: HttpRequest, run_id: str) -> HttpResponse:
    run = event_selectors.verification_runs_visible_to(request.user).filter(pk=run_id).first()
    if run is None:
        raise Http404("No such verification run.")
    return render(request, "governance/verification.html", {"run": run})


@login_required
def metrics_page(request: HttpRequest) -> HttpResponse:
    """The platform's metrics for a platform administrator; a tenant administrator's own tenants."""
    telemetry = event_selectors.telemetry_for(request.user)
    if telemetry is None:
        raise Http404("Governance metrics are for administrators.")
    return render(request, "governance/metrics.html", {"t": telemetry})
