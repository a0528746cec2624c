"""Probe endpoints and the governance pages: overview, event feed, event page, verification, metrics."""

from __future__ import annotations

import os
import time
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.selectors import access_by_tenant, is_platform_admin
from governance.api.views import _may_run_verification
from governance.errors import DomainError, NotFound
from governance.events import selectors as event_selectors
from governance.events.models import VerificationRun
from governance.events.services import verification_start
from governance.filtersets import EventFilterSet
from governance.selectors import readiness

_STARTED = time.time()
FEED_PAGE_SIZE = 50


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Touches nothing else."""
    return JsonResponse(
        {"status": "ok", "pid": os.getpid(), "uptime_seconds": round(time.time() - _STARTED, 1)}
    )


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: database, broker and the last worker heartbeat; 503 if any fails."""
    checks = readiness()
    ok = all(check.ok for check in checks)
    return JsonResponse(
        {
            "status": "ok" if ok else "unavailable",
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
        },
        status=200 if ok else 503,
    )


@login_required
def governance_index(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "governance/index.html",
        {
            "checks": readiness(),
            "access": access_by_tenant(request.user),
            "latest_checkpoint": event_selectors.latest_checkpoint(),
            "latest_verification": event_selectors.latest_verification(),
            "can_verify": _may_run_verification(request.user),
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
    try:
        event = event_selectors.event_for_user(request.user, seq)
    except NotFound as exc:
        raise Http404(exc.message) from exc
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
@require_POST
def verify_start(request: HttpRequest) -> HttpResponse:
    if not _may_run_verification(request.user):
        messages.error(request, "Only administrators can start a verification.")
        return redirect("governance")
    try:
        run = verification_start(actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("governance")
    return redirect(run)


@login_required
def verification_detail(request: HttpRequest, run_id: str) -> HttpResponse:
    run = VerificationRun.objects.select_related("requested_by").filter(pk=run_id).first()
    if run is None:
        raise Http404("No such verification run.")
    return render(request, "governance/verification.html", {"run": run})


@login_required
def metrics_page(request: HttpRequest) -> HttpResponse:
    if not (is_platform_admin(request.user) or _may_run_verification(request.user)):
        raise Http404("Governance metrics are for administrators.")
    return render(request, "governance/metrics.html", {"t": event_selectors.telemetry()})
