"""Probe endpoints and the governance pages: overview, event feed, event page, verification,
metrics and the readiness dashboard (the waiver pages are ``reviews.waivers.views``).
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.models import User
from accounts.selectors import access_by_tenant, is_platform_admin
from governance import selectors
from governance.filtersets import EventFilterSet
from governance.kernel import charts
from governance.kernel.errors import DomainError, NotFound
from governance.kernel.events import selectors as event_selectors
from governance.kernel.events.services import verification_start
from governance.kernel.permissions import can_start_verification
from governance.selectors import readiness
from registry import hooks as registry_hooks

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
    access = access_by_tenant(request.user)
    return render(
        request,
        "governance/index.html",
        {
            "checks": readiness(),
            "access": access,
            "can_see_readiness": any(
                selectors.OVERSIGHT_ROLES.intersection(a.roles) for a in access
            ),
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
    try:
        run = verification_start(actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("governance")
    return redirect(run)


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


# --- readiness dashboard ----------------------------------------------------------------------

#: More promoted changes than this are drawn as one bar per day (the day's median).
CHART_MAX_BARS = 60
#: A bar is at least this share of the axis tall, so a change promoted within minutes
#: still shows a bar (its true time is in its tooltip and in the table below the chart).
MIN_BAR_SHARE = 0.015


@dataclass
class LeadTimeChart:
    image: charts.ChartImage
    per_day: bool
    bars: int


def duration_text(hours: float | None) -> str:
    if hours is None:
        return "—"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} d"


def lead_time_chart(lead: selectors.LeadTimes) -> LeadTimeChart | None:
    """Bars of the opened-to-promoted time (pygal, an SVG image: no script, no CDN).

    One bar per promoted change, oldest promotion on the left; past ``CHART_MAX_BARS`` one
    bar per day holding that day's median. Major guides mark the median and the p90. The
    axis ticks are round and distinct in a unit that fits (``charts.duration_axis``), and
    a zero-length bar is drawn ``MIN_BAR_SHARE`` tall instead of vanishing.
    """
    if not lead.samples:
        return None
    per_day = len(lead.samples) > CHART_MAX_BARS
    values: list[tuple[float, str, str]] = []
    if per_day:
        by_day: dict[Any, list[float]] = {}
        for s in lead.samples:
            by_day.setdefault(timezone.localtime(s.promoted_at).date(), []).append(s.hours)
        for day, hours in sorted(by_day.items()):
            median = statistics.median(hours)
            values.append(
                (median, f"{day:%Y-%m-%d}: median {duration_text(median)} over {len(hours)}", "")
            )
    else:
        for s in lead.samples:
            title = (
                f"{s.reference} ({s.tenant}): {duration_text(s.hours)}, promoted "
                f"{timezone.localtime(s.promoted_at):%Y-%m-%d %H:%M}"
            )
            values.append((s.hours, title, s.url))
    ticks = charts.duration_axis(max(v for v, _, _ in values))
    top = ticks[-1][0]
    y_labels: list[dict[str, Any]] = [{"value": h, "label": text} for h, text in ticks]
    majors: list[float] = []
    for name, mark in (("median", lead.median_hours), ("p90", lead.p90_hours)):
        if mark is not None:
            y_labels.append({"value": mark, "label": f"{name} {charts.duration_label(mark)}"})
            majors.append(mark)
    chart = charts.bar(
        show_legend=False,
        range=(0, top),
        y_labels=y_labels,
        y_labels_major=majors,
        show_minor_x_labels=False,
        height=240,
    )
    chart.add(
        "Opened to promoted",
        [
            {
                "value": max(v, top * MIN_BAR_SHARE),
                "label": title,
                **({"xlink": url} if url else {}),
            }
            for v, title, url in values
        ],
    )
    shape = (
        "One bar per day: the median time of the changes promoted that day."
        if per_day
        else "One bar per promoted change, oldest promotion first."
    )
    alt = (
        f"Time from opened to promoted. {shape} Median {duration_text(lead.median_hours)}, "
        f"p90 {duration_text(lead.p90_hours)}."
    )
    return LeadTimeChart(image=charts.render(chart, alt=alt), per_day=per_day, bars=len(values))


@login_required
def readiness_page(request: HttpRequest) -> HttpResponse:
    """One page for administrators and officers: what needs attention, across their tenants."""
    user = cast(User, request.user)
    tenants = selectors.readiness_tenants(user)
    if not tenants and not is_platform_admin(user):
        raise DjangoPermissionDenied(
            "The readiness dashboard is for administrators and privacy or security officers."
        )
    board = selectors.readiness_dashboard(tenants, timezone.now(), viewer=user)
    # Who used each deprecated version lately (24 h and 7 d per tenant and application), from
    # the runtime's telemetry through the registry's hook: one query for the whole list.
    recent = registry_hooks.usage_by_version([d.version_id for d in board.deprecations])
    slugs = {t.slug for t in board.tenants}
    for d in board.deprecations:
        d.recent_usage = [  # type: ignore[attr-defined]
            u for u in recent.get(d.version_id, []) if u.tenant_slug in slugs or not slugs
        ]
    return render(
        request,
        "governance/readiness.html",
        {
            "board": board,
            "chart": lead_time_chart(board.lead),
            "median_text": duration_text(board.lead.median_hours),
            "p90_text": duration_text(board.lead.p90_hours),
            "soon_days": settings.WAIVER_EXPIRING_SOON_DAYS,
            "flag_warning_days": settings.ROLLOUT_FLAG_WARNING_DAYS,
        },
    )
