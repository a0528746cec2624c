"""Changing an artifact's owner or description, and deprecating or retiring a version, from the
browser."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from governance.kernel import reauth
from governance.kernel.errors import DomainError, NotFound
from governance.kernel.forms import form_error
from governance.kernel.views import post_only, submit
from registry import selectors, services
from registry.forms import DeprecateForm, DescribeForm, OwnerForm, RetireForm
from registry.models import Artifact, Deprecation, Retirement, Version
from registry.permissions import can_change_owner, can_deprecate, can_describe, can_retire
from registry.views.pages import (
    actor_of,
    artifact_page,
    members,
    replacement_choices,
    version_or_404,
    version_page,
)


@login_required
@post_only("registry:artifact", "cls", "tenant", "slug")
def artifact_owner(request: HttpRequest, cls: str, tenant: str, slug: str) -> HttpResponse:
    found = selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
    allowed = can_change_owner(request.user, found)
    if not allowed:  # no form on the page for this person: the reason above it
        messages.error(request, allowed.reason)
        return artifact_page(request, found, status=403)
    form = OwnerForm(request.POST, members=members(found.tenant))

    def hand_over(data: dict[str, Any]) -> Artifact:
        return services.artifact_owner_set(
            artifact=found, owner=data["owner"], reason=data["reason"], actor=actor_of(request)
        )

    # A refusal too: its reason on the form, with its 403.
    done = submit(form, hand_over, invalid_status=400)
    if not done.ok or done.result is None:
        return artifact_page(request, found, owner_form=form, status=done.status)
    changed = done.result
    messages.success(
        request, f"{changed.owner.username if changed.owner else 'Nobody'} now owns {changed.path}."
    )
    return redirect(changed)


@login_required
@post_only("registry:artifact", "cls", "tenant", "slug")
def artifact_describe(request: HttpRequest, cls: str, tenant: str, slug: str) -> HttpResponse:
    found = selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
    allowed = can_describe(request.user, found)
    if not allowed:  # no form on the page for this person: the reason above it
        messages.error(request, allowed.reason)
        return artifact_page(request, found, status=403)
    form = DescribeForm(request.POST)

    def describe(data: dict[str, Any]) -> Artifact:
        return services.artifact_describe(
            artifact=found, title=data["title"], summary=data["summary"], actor=actor_of(request)
        )

    done = submit(form, describe, invalid_status=400)
    if not done.ok or done.result is None:
        return artifact_page(request, found, describe_form=form, status=done.status)
    messages.success(request, f"{done.result.path}: title and summary saved.")
    return redirect(done.result)


def _lifecycle_target(
    request: HttpRequest, cls: str, tenant: str, slug: str, version: str
) -> tuple[Artifact, Version]:
    """The artifact and version an administrator acts on (404 when unseen)."""
    found_artifact = selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
    return found_artifact, version_or_404(request, found_artifact, version)


def _lifecycle_refused(
    request: HttpRequest, artifact: Artifact, version: Version, reason: str
) -> HttpResponse:
    """Someone who may not deprecate or retire posted anyway: the version page says why (403)."""
    messages.error(request, reason)
    return version_page(request, artifact, version, status=403)


@login_required
@post_only("registry:version", "cls", "tenant", "slug", "version")
def version_deprecate(
    request: HttpRequest, cls: str, tenant: str, slug: str, version: str
) -> HttpResponse:
    found_artifact, found = _lifecycle_target(request, cls, tenant, slug, version)
    allowed = can_deprecate(request.user, found)
    if not allowed:
        return _lifecycle_refused(request, found_artifact, found, allowed.reason)
    choices = replacement_choices(found_artifact, found)
    fresh = reauth.recently_confirmed(request)
    form = DeprecateForm(request.POST, versions=choices, needs_password=not fresh)
    if not form.is_valid():
        return version_page(request, found_artifact, found, posted=form, status=400)
    refused = reauth.password_refusal(request, form)  # a deliberate act
    if refused is not None:
        return version_page(request, found_artifact, found, posted=form, status=refused)
    try:
        deprecation: Deprecation = services.version_deprecate(
            version=found,
            replacement=form.replacement_value(found_artifact.path),
            reason=form.cleaned_data["reason"],
            remove_after_days=form.cleaned_data["remove_after"],
            override_reason=form.cleaned_data.get("override_reason", ""),
            actor=actor_of(request),
        )
    except DomainError as exc:  # special: the override field, and a replacement not found
        if exc.field == "override_reason" and not form.show_override:
            # Refused for its dependents: offer the override, keeping what was typed.
            form = DeprecateForm(
                request.POST, versions=choices, show_override=True, needs_password=not fresh
            )
            form.is_valid()
        form_error(form, exc, {"replacement": form.replacement_field})
        # A replacement that does not resolve is bad input on this form, not a missing page;
        # a refusal (403) is said above the page, which no longer offers the form.
        code = 400 if isinstance(exc, NotFound) else exc.status_code
        return version_page(request, found_artifact, found, posted=form, status=code)
    messages.success(
        request,
        f"Deprecated {found.path}: replaced by {deprecation.replacement.path}, removed from "
        f"resolution after {deprecation.remove_after:%Y-%m-%d}.",
    )
    return redirect(found)


@login_required
@post_only("registry:version", "cls", "tenant", "slug", "version")
def version_retire(
    request: HttpRequest, cls: str, tenant: str, slug: str, version: str
) -> HttpResponse:
    found_artifact, found = _lifecycle_target(request, cls, tenant, slug, version)
    allowed = can_retire(request.user, found)
    if not allowed:
        return _lifecycle_refused(request, found_artifact, found, allowed.reason)
    form = RetireForm(request.POST, needs_password=not reauth.recently_confirmed(request))

    def retire(data: dict[str, Any]) -> Retirement:
        reauth.require_password(request, data.get("password"))  # a deliberate act
        return services.version_retire(
            version=found, rationale=data["rationale"], actor=actor_of(request)
        )

    # A refusal (403) is said above the page, which no longer offers the form.
    done = submit(form, retire, invalid_status=400)
    if not done.ok or done.result is None:
        return version_page(request, found_artifact, found, posted=form, status=done.status)
    messages.success(
        request,
        f"Retired {found.path} to simulation-only; its evidence is kept until "
        f"{done.result.retain_until:%Y-%m-%d}.",
    )
    return redirect(found)
