"""Probe endpoints and the governance pages: overview, event feed, event page, verification,
metrics, waivers (list, page, grant, renew, revoke, countersign) and the readiness dashboard.

Views check the shape of input and turn a DomainError into a form error or a message with its
4xx status; every rule lives in ``governance.services``.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Tenant, User
from accounts.selectors import access_by_tenant, is_platform_admin, tenant_for_user
from governance import permissions, selectors, services
from governance.choices import WaiverState
from governance.filtersets import EventFilterSet, WaiverFilterSet
from governance.forms import WaiverForm, WaiverRenewForm, WaiverRevokeForm
from governance.kernel import charts
from governance.kernel.errors import DomainError, Forbidden, NotFound
from governance.kernel.events import selectors as event_selectors
from governance.kernel.events.services import verification_start
from governance.kernel.forms import form_error
from governance.kernel.permissions import can_start_verification
from governance.models import Waiver
from governance.permissions import (
    can_grant_waiver,
    can_renew_waiver,
    can_revoke_waiver,
    may_grant_waivers,
    waiver_actions,
)
from governance.selectors import readiness
from registry import hooks as registry_hooks
from registry import selectors as registry_selectors
from registry.models import Artifact
from reviews import selectors as review_selectors
from reviews.choices import CheckKind

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


# --- waivers -----------------------------------------------------------------------------------

WAIVER_PAGE_SIZE = 50


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _waiver_or_404(request: HttpRequest, reference: str) -> Waiver:
    try:
        return selectors.waiver_by_reference(reference, visible_to=request.user)
    except NotFound as exc:
        raise Http404(exc.message) from exc


@login_required
def waiver_list(request: HttpRequest) -> HttpResponse:
    """Waivers by state, expiring soon first; the state is judged once, at one ``now``."""
    now = timezone.now()
    base = selectors.waiver_list(request.user, now)
    filters = WaiverFilterSet(request.GET or None, queryset=base, request=request)
    invalid = filters.is_bound and not filters.is_valid()
    qs = base.none() if invalid else (filters.qs if filters.is_bound else base)
    page = Paginator(qs, WAIVER_PAGE_SIZE).get_page(request.GET.get("page"))
    groups: list[tuple[str, str, list[Waiver]]] = []
    for waiver in page.object_list:
        state = waiver.state  # annotated by waivers_by_state
        if not groups or groups[-1][0] != state:
            groups.append((state, WaiverState(state).label, []))
        groups[-1][2].append(waiver)
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "governance/waiver_list.html",
        {
            "filters": filters,
            "page": page,
            "groups": groups,
            "query": params.urlencode(),
            "now": now,
            "soon_days": settings.WAIVER_EXPIRING_SOON_DAYS,
            "may_grant": may_grant_waivers(request.user),
        },
        status=400 if invalid else 200,
    )


def _waiver_page(request: HttpRequest, waiver: Waiver, status: int = 200) -> HttpResponse:
    now = timezone.now()
    state = waiver.state_at(now)
    lineage = selectors.waiver_lineage(waiver)
    position = next(i for i, w in enumerate(lineage) if w.pk == waiver.pk)
    return render(
        request,
        "governance/waiver_detail.html",
        {
            "waiver": waiver,
            "state": state,
            "now": now,
            "artifacts": list(waiver.artifacts.all()),
            "lineage": lineage,
            "renewed_from": lineage[position - 1] if position > 0 else None,
            "renewed_by": lineage[position + 1] if position + 1 < len(lineage) else None,
            "events": list(selectors.waiver_history(lineage)),
            "covered": selectors.changes_covered_by(waiver),
            "can": waiver_actions(_user(request), waiver, state),
        },
        status=status,
    )


@login_required
def waiver_detail(request: HttpRequest, reference: str) -> HttpResponse:
    return _waiver_page(request, _waiver_or_404(request, reference))


def _artifact_in(tenant: Tenant, text: str, user: User) -> Artifact:
    """The artifact a ``class/tenant/slug`` line names, if the user can see it; DomainError if not."""
    ref = registry_selectors.parse(text, tenant=tenant.slug)
    if ref.class_slug is None or ref.version is not None:
        raise DomainError(
            f"'{text[:80]}': name each artifact as class/tenant/slug, e.g. prompt/{tenant.slug}/qualify-lead.",
            field="artifacts",
        )
    try:
        return registry_selectors.artifact_by_path(
            ref.class_slug, ref.tenant or tenant.slug, ref.slug, visible_to=user
        )
    except NotFound as exc:
        raise DomainError(exc.message, field="artifacts") from exc


def _grant(request: HttpRequest, form: WaiverForm) -> HttpResponse | int:
    """Grant the waiver the form describes: a redirect, or the 4xx status (errors on the form)."""
    user = _user(request)
    data = form.cleaned_data
    try:
        tenant = tenant_for_user(user, data["tenant"])
    except DomainError as exc:
        form_error(form, exc)
        return exc.status_code
    change = None
    change_ref = data["change"].strip()
    if change_ref:
        try:
            change = review_selectors.change_by_reference(change_ref, visible_to=user)
        except NotFound:
            form.add_error("change", f"No change request {change_ref} that you can see.")
    artifacts = []
    for path in form.artifact_paths():
        try:
            artifacts.append(_artifact_in(tenant, path, user))
        except DomainError as exc:
            form.add_error("artifacts", exc.message)
    owner = User.objects.filter(username=data["owner"].strip()).first()
    if owner is None:
        form.add_error("owner", f"{data['owner']} is not an active member of {tenant.slug}.")
    if form.errors:
        return 400
    try:
        waiver = services.waiver_grant(
            tenant=tenant,
            actor=user,
            check_kind=data["check_kind"],
            metric=data["metric"],
            change=change,
            artifacts=artifacts,
            owner=owner,
            justification=data["justification"],
            mitigation=data["mitigation"],
            advisory_links=form.links(),
            expires_at=form.expiry(),
        )
    except DomainError as exc:  # a refusal (403) too: its reason on the page, never a bare 403
        form_error(form, exc, aliases={"scope": "change"})
        return exc.status_code
    note = " It counts once a security officer countersigns it." if waiver.needs_security else ""
    messages.success(request, f"Granted {waiver.reference}.{note}")
    return redirect(waiver)


@login_required
def waiver_new(request: HttpRequest) -> HttpResponse:
    """Grant a waiver; ``?change=CR-...&check=...`` fills in the scope from a change page."""
    user = _user(request)
    # Only the tenants where this person may grant (the one predicate); the form is offered
    # only to someone who may grant somewhere (an officer may not).
    tenants = [
        row.tenant.slug
        for row in access_by_tenant(user)
        if can_grant_waiver(user, row.tenant, roles=row.roles)
    ]
    may_grant = bool(tenants)
    refusal = "" if may_grant else permissions.GRANT_REASON
    initial: dict[str, Any] = {}
    change_ref = request.GET.get("change", "").strip()[:40]
    if change_ref:
        initial["change"] = change_ref
        # A reference that does not resolve is said so on the form when it is sent.
        with contextlib.suppress(DomainError):
            change = review_selectors.change_by_reference(change_ref, visible_to=user)
            initial["tenant"] = change.tenant.slug
    check = request.GET.get("check", "")
    if check in CheckKind.values:
        initial["check_kind"] = check
    form = WaiverForm(request.POST or None, tenants=tenants, initial=initial)
    status = 200 if may_grant else 403
    if request.method == "POST":
        status = 400 if may_grant else 403
        if form.is_valid():
            outcome = _grant(request, form)
            if isinstance(outcome, HttpResponse):
                return outcome
            status = outcome
            if not may_grant:  # the form is not on the page: the service's reason is
                refusal = " ".join(str(e) for e in form.non_field_errors()) or refusal
    return render(
        request,
        "governance/waiver_form.html",
        {
            "form": form if may_grant else None,
            "refusal": refusal,
            "max_days": settings.WAIVER_MAX_DAYS,
        },
        status=status,
    )


def _refused(request: HttpRequest, waiver: Waiver, action: str, reason: str) -> HttpResponse:
    """A renew or revoke this person may not do: the page says why (403), with no form."""
    return render(
        request,
        "governance/waiver_action.html",
        {"form": None, "refusal": reason, "waiver": waiver, "action": action},
        status=403,
    )


@login_required
def waiver_renew(request: HttpRequest, reference: str) -> HttpResponse:
    """A renewal is a new waiver with the same scope, linked to this one; terms may be restated."""
    waiver = _waiver_or_404(request, reference)
    user = _user(request)
    allowed = can_renew_waiver(user, waiver)
    if not allowed:
        return _refused(request, waiver, "renew", allowed.reason)
    initial = {
        "justification": waiver.justification,
        "mitigation": waiver.mitigation,
        "advisory_links": "\n".join(waiver.advisory_links),
    }
    form = WaiverRenewForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                renewal = services.waiver_renew(
                    waiver=waiver,
                    actor=user,
                    expires_at=form.expiry(),
                    justification=form.cleaned_data["justification"],
                    mitigation=form.cleaned_data["mitigation"],
                    advisory_links=form.links(),
                )
            except Forbidden as exc:
                return _refused(request, waiver, "renew", exc.message)
            except DomainError as exc:
                form_error(form, exc)
                status = exc.status_code
            else:
                messages.success(request, f"Renewed {waiver.reference} as {renewal.reference}.")
                return redirect(renewal)
    return render(
        request,
        "governance/waiver_action.html",
        {"form": form, "waiver": waiver, "action": "renew", "max_days": settings.WAIVER_MAX_DAYS},
        status=status,
    )


@login_required
def waiver_revoke(request: HttpRequest, reference: str) -> HttpResponse:
    """End a waiver now; a reason is required and goes into the log."""
    waiver = _waiver_or_404(request, reference)
    user = _user(request)
    allowed = can_revoke_waiver(user, waiver)
    if not allowed:
        return _refused(request, waiver, "revoke", allowed.reason)
    form = WaiverRevokeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                services.waiver_revoke(
                    waiver=waiver, actor=user, reason=form.cleaned_data["reason"]
                )
            except Forbidden as exc:
                return _refused(request, waiver, "revoke", exc.message)
            except DomainError as exc:
                form_error(form, exc)
                status = exc.status_code
            else:
                messages.success(request, f"Revoked {waiver.reference}.")
                return redirect(waiver)
    return render(
        request,
        "governance/waiver_action.html",
        {"form": form, "waiver": waiver, "action": "revoke"},
        status=status,
    )


@login_required
@require_POST
def waiver_countersign(request: HttpRequest, reference: str) -> HttpResponse:
    """A security officer's agreement to a waiver of a security check."""
    waiver = _waiver_or_404(request, reference)
    try:
        services.waiver_countersign(waiver=waiver, actor=_user(request))
    except DomainError as exc:  # refused (403) or too late (409): the reason above the page
        messages.error(request, exc.message)
        return _waiver_page(request, _waiver_or_404(request, reference), status=exc.status_code)
    messages.success(request, f"Countersigned {waiver.reference}; it counts from now.")
    return redirect(waiver)


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
    user = _user(request)
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
