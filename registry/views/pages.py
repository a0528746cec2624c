"""What the registry's pages share: finding a version for a page, and the artifact and version
pages themselves (shown again, with a form's errors, by the views that change them)."""

from __future__ import annotations

import json
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import QuerySet, prefetch_related_objects
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.models import Tenant, User
from accounts.selectors import roles_in_tenant, tenants_visible_to
from governance.kernel import reauth
from governance.kernel.errors import DomainError
from governance.kernel.events.models import SigningKey
from registry import hooks, selectors
from registry.choices import ContentKind, Stage
from registry.forms import DeprecateForm, DescribeForm, OwnerForm, RetireForm
from registry.highlight import highlight_json, highlight_text
from registry.models import (
    Artifact,
    Deprecation,
    Retirement,
    Version,
    VersionState,
    VersionUsage,
)
from registry.permissions import can_change_owner, can_deprecate, can_describe, can_retire
from registry.provenance import provenance_of
from registry.verification import check_version
from registry.views.safety_panel import safety_context

PAGE_SIZE = 25
#: How many usage rows the version page shows beside a deprecation.
USAGE_LIMIT = 50


def actor_of(request: HttpRequest) -> User:
    """The signed-in person a service acts for (every view that writes requires a login)."""
    return cast(User, request.user)


def version_or_404(request: HttpRequest, artifact: Artifact, version: str) -> Version:
    """The version a page names; one the user cannot see, or a malformed one, is a missing page."""
    try:
        return selectors.version_by_reference(f"{artifact.path}/{version}", visible_to=request.user)
    except DomainError as exc:
        raise Http404(exc.message) from exc


def members(tenant: Tenant) -> QuerySet[User]:
    """Active members of a tenant, the people an artifact can be handed to."""
    return User.objects.filter(
        memberships__tenant=tenant, memberships__removed_at__isnull=True, is_active=True
    ).order_by("username")


def artifact_page(
    request: HttpRequest,
    found: Artifact,
    *,
    owner_form: OwnerForm | None = None,
    describe_form: DescribeForm | None = None,
    status: int = 200,
    **posted: Any,
) -> HttpResponse:
    """The artifact's page; ``owner_form``, ``describe_form`` and ``posted`` (``eligible_form``, ``deputy_form``,
    ``switch_form``) bring a refused form back with its errors."""
    page = Paginator(
        selectors.versions_of(found).select_related(
            "deprecation__replacement__artifact__artifact_class",
            "deprecation__replacement__artifact__tenant",
            "retirement",
        ),
        PAGE_SIZE,
    ).get_page(request.GET.get("page"))
    # check_version compares each version's dependency rows with its manifest: one query.
    page.object_list = list(page.object_list)
    prefetch_related_objects(page.object_list, "dependencies")
    keys = dict(SigningKey.objects.values_list("kid", "public_key"))
    active = found.active_version
    stage = (
        VersionState.objects.filter(version=active).values_list("stage", flat=True).first()
        if active is not None
        else None
    )
    roles = roles_in_tenant(request.user, found.tenant)
    # The same rules the services refuse with (registry permissions; reviews adds its forms).
    may_change_owner = can_change_owner(request.user, found, roles=roles)
    if owner_form is None and may_change_owner:
        owner_form = OwnerForm(members=members(found.tenant))
    may_describe = can_describe(request.user, found, roles=roles)
    if describe_form is None and may_describe:
        describe_form = DescribeForm(initial={"title": found.title, "summary": found.summary})
    return render(
        request,
        "registry/artifact.html",
        {
            "artifact": found,
            "page": page,
            "checks": {v.pk: check_version(v, keys) for v in page.object_list},
            "dependents": selectors.dependents_of_artifact(found)[:100],
            "active": active,
            "recommended": selectors.recommended_version_of(found),
            "active_stage": Stage(stage or Stage.DRAFT).label if active else None,
            "owner_form": owner_form if may_change_owner else None,
            "describe_form": describe_form if may_describe else None,
            # The rollback and deactivation forms, from reviews (registry does not import it).
            **hooks.artifact_panels(request.user, found, roles=roles),
            # Action-eligible: the flag, the deputy and the safety switch that halts resolution.
            **safety_context(request, found, roles=roles, members=members(found.tenant), **posted),
        },
        status=status,
    )


def replacement_choices(artifact: Artifact, version: Version) -> list[tuple[str, str]]:
    """The artifact's other versions that could replace this one (not deprecated or retired)."""
    rows = (
        Version.objects.filter(artifact=artifact, deprecation__isnull=True, retirement__isnull=True)
        .exclude(pk=version.pk)
        .order_by("-ordinal")
        .values_list("pk", "version")[:200]
    )
    return [(v, f"{v} (active)" if pk == artifact.active_version_id else v) for pk, v in rows]


def _content_html(found: Version) -> str | None:
    if found.content_kind == ContentKind.TEXT:
        return highlight_text(found.content_text)
    if found.content_kind == ContentKind.JSON:
        return highlight_json(found.content_json)
    return None


def _refusals_above(request: HttpRequest, *offered: tuple[Any, bool]) -> None:
    """A refusal whose form is no longer offered (it became active, was retired meanwhile)
    is said above the page instead."""
    for refused, shown in offered:
        if refused is not None and refused.is_bound and not shown:
            for errors in refused.errors.values():
                for error in errors:
                    messages.error(request, str(error))


def version_page(
    request: HttpRequest,
    found_artifact: Artifact,
    found: Version,
    *,
    posted: DeprecateForm | RetireForm | None = None,
    status: int = 200,
) -> HttpResponse:
    """The version page; ``posted`` is a lifecycle form shown again with its errors."""
    deprecate_form = posted if isinstance(posted, DeprecateForm) else None
    retire_form = posted if isinstance(posted, RetireForm) else None
    previous = Version.objects.filter(artifact=found_artifact, ordinal=found.ordinal - 1).first()
    deprecation = (
        Deprecation.objects.filter(version=found)
        .select_related(
            "replacement__artifact__artifact_class",
            "replacement__artifact__tenant",
            "deprecated_by",
        )
        .first()
    )
    retirement = Retirement.objects.filter(version=found).select_related("retired_by").first()
    is_active = found_artifact.active_version_id == found.pk
    roles = roles_in_tenant(request.user, found_artifact.tenant)
    who_deprecates = can_deprecate(request.user, found, roles=roles)
    who_retires = can_retire(request.user, found, roles=roles)
    may_deprecate = bool(who_deprecates) and deprecation is None and retirement is None
    may_deprecate = may_deprecate and not is_active
    may_retire = bool(who_retires) and retirement is None and not is_active
    if may_deprecate and deprecate_form is None:
        deprecate_form = DeprecateForm(
            versions=replacement_choices(found_artifact, found),
            needs_password=not reauth.recently_confirmed(request),
            initial={"remove_after": max(settings.DEPRECATION_MIN_GRACE_DAYS, 30)},
        )
    if may_retire and retire_form is None:
        retire_form = RetireForm(needs_password=not reauth.recently_confirmed(request))
    _refusals_above(request, (deprecate_form, may_deprecate), (retire_form, may_retire))
    upstream = list(selectors.upstream_of(found))
    return render(
        request,
        "registry/version.html",
        {
            "artifact": found_artifact,
            "version": found,
            "previous": previous,
            "content_html": _content_html(found),
            "manifest_html": highlight_json(json.loads(bytes(found.manifest))),
            "check": check_version(found),
            "stage": (stage := selectors.stage_of(found)),
            "stage_label": Stage(stage).label,
            "upstream": upstream,
            "provenance": provenance_of(found, upstream),
            "downstream": selectors.downstream_of(found),
            "deprecation": deprecation,
            "retirement": retirement,
            "usage": list(
                VersionUsage.objects.filter(version=found).order_by("-last_seen_at")[:USAGE_LIMIT]
            )
            if deprecation is not None
            else [],
            "recent_usage": _visible_usage(request, hooks.usage_for(found)),
            "usage_url": hooks.usage_url(found_artifact),
            # The stage criteria's checklist, from reviews (registry does not import it).
            "checklist": hooks.checklist_for(found),
            # Warnings from the floors above ("Not re-certified (due …)": reviews).
            "version_notices": hooks.version_notices(found),
            "may_manage_lifecycle": bool(who_deprecates or who_retires),
            "is_active": is_active,
            "deprecate_form": deprecate_form if may_deprecate else None,
            "retire_form": retire_form if may_retire else None,
        },
        status=status,
    )


def _visible_usage(request: HttpRequest, rows: list[Any]) -> list[Any]:
    """Usage rows of the tenants the user may see (another tenant's traffic stays its own)."""
    if not rows:
        return rows
    visible = set(tenants_visible_to(request.user).values_list("slug", flat=True))
    return [r for r in rows if r.tenant_slug in visible]
