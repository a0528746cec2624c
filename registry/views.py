"""Registry pages: artifact list, artifact, version, diff, and publishing from the browser."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet, prefetch_related_objects
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.models import Tenant, User
from accounts.selectors import (
    access_by_tenant,
    roles_in_tenant,
    tenant_for_user,
    tenants_visible_to,
)
from governance.kernel.errors import DomainError, Forbidden, NotFound
from governance.kernel.events.models import SigningKey
from governance.kernel.forms import form_error
from registry import hooks, selectors, services
from registry.choices import ContentKind, Stage
from registry.diffs import version_diff
from registry.filtersets import ArtifactFilterSet
from registry.forms import ArtifactForm, DeprecateForm, OwnerForm, PublishForm, RetireForm
from registry.highlight import highlight_json, highlight_text
from registry.models import (
    Artifact,
    ArtifactClass,
    Deprecation,
    Retirement,
    Version,
    VersionState,
    VersionUsage,
)
from registry.permissions import can_change_owner, can_deprecate, can_retire
from registry.verification import check_version

PAGE_SIZE = 25
#: How many usage rows the version page shows beside a deprecation.
USAGE_LIMIT = 50


def _artifact_or_404(request: HttpRequest, cls: str, tenant: str, slug: str) -> Artifact:
    try:
        return selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _version_or_404(request: HttpRequest, artifact: Artifact, version: str) -> Version:
    try:
        return selectors.version_by_reference(f"{artifact.path}/{version}", visible_to=request.user)
    except DomainError as exc:
        raise Http404(exc.message) from exc


@login_required
def index(request: HttpRequest) -> HttpResponse:
    filters = ArtifactFilterSet(
        request.GET or None, queryset=selectors.artifacts_visible_to(request.user)
    )
    qs = filters.qs if filters.is_valid() else selectors.artifacts_visible_to(request.user)
    page = Paginator(
        qs.order_by("tenant__slug", "artifact_class__slug", "slug"), PAGE_SIZE
    ).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "registry/index.html",
        {
            "filters": filters,
            "page": page,
            "query": params.urlencode(),
            "classes": ArtifactClass.objects.all(),
            "access": access_by_tenant(request.user),
        },
    )


@login_required
def artifact_new(request: HttpRequest) -> HttpResponse:
    tenants = [row.tenant.slug for row in access_by_tenant(request.user)]
    form = ArtifactForm(
        request.POST or None, tenants=tenants, initial={"artifact_class": request.GET.get("class")}
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                artifact = services.artifact_create(
                    artifact_class=data["artifact_class"],
                    tenant=tenant_for_user(request.user, data["tenant"]),
                    slug=data["slug"],
                    title=data["title"],
                    summary=data["summary"],
                    license=data["license"],
                    actor=request.user,  # type: ignore[arg-type]
                )
            except DomainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
                status = exc.status_code
            else:
                messages.success(request, f"Created {artifact.path}. Publish its first version.")
                return redirect(reverse("registry:publish", kwargs=artifact.url_kwargs()))
    return render(request, "registry/artifact_new.html", {"form": form}, status=status)


def _members(tenant: Tenant) -> QuerySet[User]:
    """Active members of a tenant, the people an artifact can be handed to."""
    return User.objects.filter(
        memberships__tenant=tenant, memberships__removed_at__isnull=True, is_active=True
    ).order_by("username")


def _artifact_page(
    request: HttpRequest,
    found: Artifact,
    *,
    owner_form: OwnerForm | None = None,
    status: int = 200,
) -> HttpResponse:
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
        owner_form = OwnerForm(members=_members(found.tenant))
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
            # The rollback and safety-switch forms, from reviews (registry does not import it).
            **hooks.artifact_panels(request.user, found, roles=roles),
        },
        status=status,
    )


@login_required
def artifact(request: HttpRequest, cls: str, tenant: str, slug: str) -> HttpResponse:
    return _artifact_page(request, _artifact_or_404(request, cls, tenant, slug))


@login_required
@require_POST
def artifact_owner(request: HttpRequest, cls: str, tenant: str, slug: str) -> HttpResponse:
    found = _artifact_or_404(request, cls, tenant, slug)
    allowed = can_change_owner(request.user, found)
    if not allowed:  # no form on the page for this person: the reason above it
        messages.error(request, allowed.reason)
        return _artifact_page(request, found, status=403)
    form = OwnerForm(request.POST, members=_members(found.tenant))
    if not form.is_valid():
        return _artifact_page(request, found, owner_form=form, status=400)
    try:
        changed = services.artifact_owner_set(
            artifact=found,
            owner=form.cleaned_data["owner"],
            reason=form.cleaned_data["reason"],
            actor=request.user,  # type: ignore[arg-type]
        )
    except DomainError as exc:  # a refusal too: its reason on the form, with its 403
        form_error(form, exc)
        return _artifact_page(request, found, owner_form=form, status=exc.status_code)
    messages.success(
        request, f"{changed.owner.username if changed.owner else 'Nobody'} now owns {changed.path}."
    )
    return redirect(changed)


def _replacement_choices(artifact: Artifact, version: Version) -> list[tuple[str, str]]:
    """The artifact's other versions that could replace this one (not deprecated or retired)."""
    rows = (
        Version.objects.filter(artifact=artifact, deprecation__isnull=True, retirement__isnull=True)
        .exclude(pk=version.pk)
        .order_by("-ordinal")
        .values_list("pk", "version")[:200]
    )
    return [(v, f"{v} (active)" if pk == artifact.active_version_id else v) for pk, v in rows]


def _version_page(
    request: HttpRequest,
    found_artifact: Artifact,
    found: Version,
    *,
    deprecate_form: DeprecateForm | None = None,
    retire_form: RetireForm | None = None,
    status: int = 200,
) -> HttpResponse:
    previous = Version.objects.filter(artifact=found_artifact, ordinal=found.ordinal - 1).first()
    if found.content_kind == ContentKind.TEXT:
        content_html = highlight_text(found.content_text)
    elif found.content_kind == ContentKind.JSON:
        content_html = highlight_json(found.content_json)
    else:
        content_html = None
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
            versions=_replacement_choices(found_artifact, found),
            initial={"remove_after": max(settings.DEPRECATION_MIN_GRACE_DAYS, 30)},
        )
    if may_retire and retire_form is None:
        retire_form = RetireForm()
    # A refusal whose form is no longer offered (it became active, was retired meanwhile)
    # is said above the page instead.
    for refused, shown in ((deprecate_form, may_deprecate), (retire_form, may_retire)):
        if refused is not None and refused.is_bound and not shown:
            for errors in refused.errors.values():
                for error in errors:
                    messages.error(request, str(error))
    return render(
        request,
        "registry/version.html",
        {
            "artifact": found_artifact,
            "version": found,
            "previous": previous,
            "content_html": content_html,
            "manifest_html": highlight_json(json.loads(bytes(found.manifest))),
            "check": check_version(found),
            "stage": (stage := selectors.stage_of(found)),
            "stage_label": Stage(stage).label,
            "upstream": selectors.upstream_of(found),
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


@login_required
def version(request: HttpRequest, cls: str, tenant: str, slug: str, version: str) -> HttpResponse:
    found_artifact = _artifact_or_404(request, cls, tenant, slug)
    return _version_page(request, found_artifact, _version_or_404(request, found_artifact, version))


def _lifecycle_target(
    request: HttpRequest, cls: str, tenant: str, slug: str, version: str
) -> tuple[Artifact, Version]:
    """The artifact and version an administrator acts on (404 when unseen)."""
    found_artifact = _artifact_or_404(request, cls, tenant, slug)
    return found_artifact, _version_or_404(request, found_artifact, version)


def _lifecycle_refused(
    request: HttpRequest, artifact: Artifact, version: Version, reason: str
) -> HttpResponse:
    """Someone who may not deprecate or retire posted anyway: the version page says why (403)."""
    messages.error(request, reason)
    return _version_page(request, artifact, version, status=403)


@login_required
@require_POST
def version_deprecate(
    request: HttpRequest, cls: str, tenant: str, slug: str, version: str
) -> HttpResponse:
    found_artifact, found = _lifecycle_target(request, cls, tenant, slug, version)
    allowed = can_deprecate(request.user, found)
    if not allowed:
        return _lifecycle_refused(request, found_artifact, found, allowed.reason)
    choices = _replacement_choices(found_artifact, found)
    form = DeprecateForm(request.POST, versions=choices)
    if not form.is_valid():
        return _version_page(request, found_artifact, found, deprecate_form=form, status=400)
    try:
        deprecation = services.version_deprecate(
            version=found,
            replacement=form.replacement_value(found_artifact.path),
            reason=form.cleaned_data["reason"],
            remove_after_days=form.cleaned_data["remove_after"],
            override_reason=form.cleaned_data.get("override_reason", ""),
            actor=request.user,  # type: ignore[arg-type]
        )
    except Forbidden as exc:
        return _lifecycle_refused(request, found_artifact, found, exc.message)
    except DomainError as exc:
        if exc.field == "override_reason" and not form.show_override:
            # Refused for its dependents: offer the override, keeping what was typed.
            form = DeprecateForm(request.POST, versions=choices, show_override=True)
            form.is_valid()
        form_error(form, exc, {"replacement": form.replacement_field})
        # A replacement that does not resolve is bad input on this form, not a missing page.
        code = 400 if isinstance(exc, NotFound) else exc.status_code
        return _version_page(request, found_artifact, found, deprecate_form=form, status=code)
    messages.success(
        request,
        f"Deprecated {found.path}: replaced by {deprecation.replacement.path}, removed from "
        f"resolution after {deprecation.remove_after:%Y-%m-%d}.",
    )
    return redirect(found)


@login_required
@require_POST
def version_retire(
    request: HttpRequest, cls: str, tenant: str, slug: str, version: str
) -> HttpResponse:
    found_artifact, found = _lifecycle_target(request, cls, tenant, slug, version)
    allowed = can_retire(request.user, found)
    if not allowed:
        return _lifecycle_refused(request, found_artifact, found, allowed.reason)
    form = RetireForm(request.POST)
    if not form.is_valid():
        return _version_page(request, found_artifact, found, retire_form=form, status=400)
    try:
        retirement = services.version_retire(
            version=found,
            rationale=form.cleaned_data["rationale"],
            actor=request.user,  # type: ignore[arg-type]
        )
    except Forbidden as exc:
        return _lifecycle_refused(request, found_artifact, found, exc.message)
    except DomainError as exc:
        form_error(form, exc)
        return _version_page(
            request, found_artifact, found, retire_form=form, status=exc.status_code
        )
    messages.success(
        request,
        f"Retired {found.path} to simulation-only; its evidence is kept until "
        f"{retirement.retain_until:%Y-%m-%d}.",
    )
    return redirect(found)


@login_required
def diff(request: HttpRequest, cls: str, tenant: str, slug: str, version: str) -> HttpResponse:
    found_artifact = _artifact_or_404(request, cls, tenant, slug)
    right = _version_or_404(request, found_artifact, version)
    against = request.GET.get("against", "")
    if not against:
        previous = Version.objects.filter(
            artifact=found_artifact, ordinal=right.ordinal - 1
        ).first()
        if previous is None:
            raise Http404("The first version has nothing to compare against.")
        against = previous.version
    left = _version_or_404(request, found_artifact, against)
    return render(
        request,
        "registry/diff.html",
        {
            "artifact": found_artifact,
            "left": left,
            "right": right,
            "diff": version_diff(left, right),
            "versions": selectors.versions_of(found_artifact)[:200],
        },
    )


@login_required
def publish(request: HttpRequest, cls: str, tenant: str, slug: str) -> HttpResponse:
    found = _artifact_or_404(request, cls, tenant, slug)
    latest = selectors.latest_version(found)
    initial: dict[str, Any] = {}
    if latest is not None:  # edit as a new version
        initial["content"] = (
            latest.content_text
            if latest.content_kind == ContentKind.TEXT
            else (
                json.dumps(latest.content_json, indent=2)
                if latest.content_kind == ContentKind.JSON
                else ""
            )
        )
        initial["variables"] = ", ".join(
            v["name"] + ("" if v.get("required", True) else "?") for v in latest.input_variables
        )
    form = PublishForm(request.POST or None, request.FILES or None, initial=initial)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            upload = data.get("file")
            content = services.Content(
                text=data["content"]
                if found.artifact_class.content_kind != ContentKind.FILE
                else None,
                file_bytes=upload.read() if upload else None,
                file_name=getattr(upload, "name", "") or "",
            )
            try:
                published, created = services.version_publish(
                    artifact=found,
                    content=content,
                    impact=data["impact"],
                    reason=data["reason"],
                    version=data["version"] or None,
                    input_variables=form.variables_list(),
                    dependencies=form.dependency_list(),
                    actor=request.user,  # type: ignore[arg-type]
                )
            except DomainError as exc:
                field = {"input_variables": "variables", "file": "file"}.get(
                    exc.field or "", exc.field
                )
                form.add_error(field if field in form.fields else None, exc.message)
                status = exc.status_code
            else:
                verb = "Published" if created else "Already published:"
                messages.success(
                    request, f"{verb} {published.path} ({published.manifest_sha256[:12]}…)."
                )
                return redirect(published)
    return render(
        request,
        "registry/publish.html",
        {"artifact": found, "form": form, "latest": latest},
        status=status,
    )
