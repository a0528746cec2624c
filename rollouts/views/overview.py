"""Pages across rollouts: the fleet, the runtime matrix, and who uses an artifact's versions."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Case, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.selectors import tenants_visible_to
from registry import selectors as registry_selectors
from rollouts import (
    dashboards,
    presenters,
    selectors,
    telemetry_selectors,
)
from rollouts.choices import ACTIVE_STATES
from rollouts.models import Slot
from rollouts.views.common import (
    user_of,
)

#: Rollouts on one page of the fleet.
FLEET_PAGE_SIZE = 50
#: The usage page names at most this many versions without traffic (newest first).
UNUSED_SHOWN = 20


@login_required
def fleet(request: HttpRequest) -> HttpResponse:
    """Every rollout across the user's tenants, running ones first, with its health at a glance."""
    qs = selectors.with_last_note(
        selectors.rollouts_visible_to(request.user).select_related("tenant", "change")
    ).order_by(
        Case(When(state__in=list(ACTIVE_STATES), then=0), default=1),
        "-number",
    )
    page = Paginator(qs, FLEET_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "rollouts/fleet.html",
        {"page": page, "rows": dashboards.fleet_rows(list(page.object_list))},
    )


@login_required
def artifact_usage(request: HttpRequest, cls: str, tenant: str, slug: str) -> HttpResponse:
    """Who still uses which version of an artifact: tenants and applications, 24 h and 7 d."""
    artifact = registry_selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
    versions = list(registry_selectors.versions_of(artifact))
    visible = set(tenants_visible_to(request.user).values_list("slug", flat=True))
    usage = telemetry_selectors.usage_by_version(versions)
    rows = [(v, [u for u in usage.get(v.pk, []) if u.tenant_slug in visible]) for v in versions]
    return render(
        request,
        "rollouts/usage.html",
        {
            "artifact": artifact,
            "rows": [(v, used) for v, used in rows if used],
            "unused": [v for v, used in rows if not used][:UNUSED_SHOWN],
        },
    )


# --- the runtime matrix ---------------------------------------------------------------------


@login_required
def matrix(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    tenants = list(tenants_visible_to(user).order_by("slug"))
    slots = list(
        Slot.objects.filter(application__in=selectors.applications_visible_to(user))
        .select_related("application__tenant", "artifact__tenant", "artifact__artifact_class")
        .order_by("application__slug", "name")
    )
    return render(
        request,
        "rollouts/matrix.html",
        {"matrix": presenters.runtime_matrix(tenants, slots)},
    )
