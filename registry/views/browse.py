"""Reading the registry: the artifact list, an artifact, a version, and the diff of two versions."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.selectors import access_by_tenant
from registry import hooks, selectors
from registry.diffs import version_diff
from registry.filtersets import ArtifactFilterSet
from registry.models import ArtifactClass, Version
from registry.views.pages import PAGE_SIZE, artifact_page, version_or_404, version_page


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
    # Where each artifact serves (its active version is every bound slot's default), from the
    # floor above through the registry's hook: one question for the whole page.
    slots = hooks.slots_by_artifact([a.pk for a in page.object_list])
    return render(
        request,
        "registry/index.html",
        {
            "filters": filters,
            "page": page,
            "rows": [(a, slots.get(a.pk, [])) for a in page.object_list],
            "query": params.urlencode(),
            "classes": ArtifactClass.objects.all(),
            "access": access_by_tenant(request.user),
        },
    )


@login_required
def artifact(request: HttpRequest, cls: str, tenant: str, slug: str) -> HttpResponse:
    return artifact_page(
        request, selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
    )


@login_required
def version(request: HttpRequest, cls: str, tenant: str, slug: str, version: str) -> HttpResponse:
    found_artifact = selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
    return version_page(request, found_artifact, version_or_404(request, found_artifact, version))


@login_required
def diff(request: HttpRequest, cls: str, tenant: str, slug: str, version: str) -> HttpResponse:
    found_artifact = selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
    right = version_or_404(request, found_artifact, version)
    against = request.GET.get("against", "")
    if not against:
        previous = Version.objects.filter(
            artifact=found_artifact, ordinal=right.ordinal - 1
        ).first()
        if previous is None:
            raise Http404("The first version has nothing to compare against.")
        against = previous.version
    left = version_or_404(request, found_artifact, against)
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
