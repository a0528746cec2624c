"""Writing to the registry from the browser: a new artifact, and publishing a version."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from accounts.selectors import access_by_tenant, tenant_for_user
from governance.kernel.views import submit
from registry import selectors, services
from registry.choices import ContentKind
from registry.forms import ArtifactForm, PublishForm
from registry.models import Artifact, Version
from registry.views.pages import actor_of

#: The publish service's field names that the form spells differently.
PUBLISH_FIELDS = {
    "input_variables": "variables",
    "file": "file",
    **{f"metadata.{name}": name for name in PublishForm.METADATA_FIELDS},
}


@login_required
def artifact_new(request: HttpRequest) -> HttpResponse:
    tenants = [row.tenant.slug for row in access_by_tenant(request.user)]
    form = ArtifactForm(
        request.POST or None, tenants=tenants, initial={"artifact_class": request.GET.get("class")}
    )
    status = 200
    if request.method == "POST":

        def create(data: dict[str, Any]) -> Artifact:
            return services.artifact_create(
                artifact_class=data["artifact_class"],
                tenant=tenant_for_user(request.user, data["tenant"]),
                slug=data["slug"],
                title=data["title"],
                summary=data["summary"],
                license_id=data["license"],
                actor=actor_of(request),
            )

        done = submit(form, create, invalid_status=400)
        if done.ok and done.result is not None:
            messages.success(request, f"Created {done.result.path}. Publish its first version.")
            return redirect(reverse("registry:publish", kwargs=done.result.url_kwargs()))
        status = done.status
    return render(request, "registry/artifact_new.html", {"form": form}, status=status)


@login_required
def publish(request: HttpRequest, cls: str, tenant: str, slug: str) -> HttpResponse:
    found = selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
    latest = selectors.latest_version(found)
    # Edit what production runs (the active version), not a newer draft nobody promoted.
    active = selectors.active_version_of(found)
    start = active or latest
    form = PublishForm(
        request.POST or None, request.FILES or None, initial=PublishForm.initial_for(start)
    )
    status = 200
    if request.method == "POST":

        def publish_version(data: dict[str, Any]) -> tuple[Version, bool]:
            upload = data.get("file")
            content = services.Content(
                text=data["content"]
                if found.artifact_class.content_kind != ContentKind.FILE
                else None,
                file_bytes=upload.read() if upload else None,
                file_name=getattr(upload, "name", "") or "",
            )
            return services.version_publish(
                artifact=found,
                content=content,
                impact=data["impact"],
                reason=data["reason"],
                version=data["version"] or None,
                input_variables=form.variables_list(),
                dependencies=form.dependency_list(),
                metadata=form.metadata(),
                actor=actor_of(request),
            )

        done = submit(form, publish_version, aliases=PUBLISH_FIELDS, invalid_status=400)
        if done.ok and done.result is not None:
            published, created = done.result
            verb = "Published" if created else "Already published:"
            messages.success(
                request, f"{verb} {published.path} ({published.manifest_sha256[:12]}…)."
            )
            return redirect(published)
        status = done.status
    return render(
        request,
        "registry/publish.html",
        {
            "artifact": found,
            "form": form,
            "latest": latest,
            "start": start,
            "start_is_active": start is not None and start == active,
        },
        status=status,
    )
