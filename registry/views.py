"""Registry pages: artifact list, artifact, version, diff, and publishing from the browser."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from accounts.choices import Role
from accounts.selectors import access_by_tenant, roles_in_tenant, tenant_for_user
from governance.errors import DomainError, NotFound
from governance.events.models import SigningKey
from registry import selectors, services
from registry.choices import ContentKind, Stage
from registry.diffs import version_diff
from registry.filtersets import ArtifactFilterSet
from registry.forms import ArtifactForm, PublishForm
from registry.highlight import highlight_json, highlight_text
from registry.models import Artifact, ArtifactClass, Version, VersionState
from registry.verification import check_version
from reviews.forms import RollbackForm

PAGE_SIZE = 25


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


@login_required
def artifact(request: HttpRequest, cls: str, tenant: str, slug: str) -> HttpResponse:
    found = _artifact_or_404(request, cls, tenant, slug)
    page = Paginator(selectors.versions_of(found), PAGE_SIZE).get_page(request.GET.get("page"))
    keys = dict(SigningKey.objects.values_list("kid", "public_key"))
    active = found.active_version
    stage = (
        VersionState.objects.filter(version=active).values_list("stage", flat=True).first()
        if active is not None
        else None
    )
    # Rolling back is an administrator's act; the service checks it again.
    may_roll_back = active is not None and Role.ADMINISTRATOR in roles_in_tenant(
        request.user, found.tenant
    )
    return render(
        request,
        "registry/artifact.html",
        {
            "artifact": found,
            "page": page,
            "checks": {v.pk: check_version(v, keys) for v in page.object_list},
            "dependents": selectors.dependents_of_artifact(found)[:100],
            "active": active,
            "active_stage": Stage(stage or Stage.DRAFT).label if active else None,
            "rollback_form": RollbackForm(artifact=found) if may_roll_back else None,
        },
    )


@login_required
def version(request: HttpRequest, cls: str, tenant: str, slug: str, version: str) -> HttpResponse:
    found_artifact = _artifact_or_404(request, cls, tenant, slug)
    found = _version_or_404(request, found_artifact, version)
    previous = Version.objects.filter(artifact=found_artifact, ordinal=found.ordinal - 1).first()
    if found.content_kind == ContentKind.TEXT:
        content_html = highlight_text(found.content_text)
    elif found.content_kind == ContentKind.JSON:
        content_html = highlight_json(found.content_json)
    else:
        content_html = None
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
        },
    )


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
