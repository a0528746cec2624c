"""Rollback and the safety switch, from an artifact's page.

A refusal is a message above the artifact's page, answered with the refusal's status; an
artifact the user cannot see is the 404 page (``NotFound``, through the middleware).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from governance.kernel import reauth
from governance.kernel.permissions import Decision
from governance.kernel.views import attempt, post_only
from registry import selectors as registry_selectors
from reviews import permissions, services
from reviews.forms import DeactivateForm, RollbackForm
from reviews.models import Activation
from reviews.views.common import user_of


def deliberately(request: HttpRequest, may: Decision) -> None:
    """Before a consequential act: who may (the service's own predicate, so a refusal says
    why), then the password (unless confirmed lately). Raises the refusal for ``attempt``."""
    may.require()
    reauth.require_password(request, request.POST.get("password"))


@login_required
@post_only("registry:artifact", "cls", "tenant", "slug")
def rollback(request: HttpRequest, cls: str, tenant: str, slug: str) -> HttpResponse:
    from registry import views as registry_views

    artifact = registry_selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
    form = RollbackForm(request.POST, artifact=artifact)
    code = 400
    if form.is_valid():

        def roll_back() -> Activation:
            deliberately(request, permissions.can_roll_back(user_of(request), artifact))
            return services.rollback(
                artifact=artifact,
                actor=user_of(request),
                reason=form.cleaned_data["reason"],
                target=form.target_reference(),
                override_reason=form.cleaned_data["override_reason"],
            )

        done = attempt(request, roll_back)
        code = done.status
        activation = done.result
        if activation is not None:
            restored = activation.version.version if activation.version else "none"
            undone = f"; {activation.change.reference} is rolled back" if activation.change else ""
            messages.success(
                request,
                f"Rolled back {artifact.path}: {restored} is active again "
                f"(was {activation.previous.version if activation.previous else 'none'}){undone}.",
            )
            return redirect(artifact)
    else:
        for field, errors in form.errors.items():
            label = form.fields[field].label if field in form.fields else ""
            for error in errors:
                messages.error(request, f"{label}: {error}" if label else str(error))
    # Show the artifact page again, with the message and the refusal's status.
    response = registry_views.artifact(request, cls=cls, tenant=tenant, slug=slug)
    response.status_code = code
    return response


@login_required
@post_only("registry:artifact", "cls", "tenant", "slug")
def deactivate(request: HttpRequest, cls: str, tenant: str, slug: str) -> HttpResponse:
    """The safety switch: the artifact keeps no active version (resolution answers 404)."""
    from registry import views as registry_views

    artifact = registry_selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
    form = DeactivateForm(request.POST)
    code = 400
    if form.is_valid():

        def switch_off() -> Activation:
            deliberately(request, permissions.can_deactivate(user_of(request), artifact))
            return services.artifact_deactivate(
                artifact=artifact, actor=user_of(request), reason=form.cleaned_data["reason"]
            )

        done = attempt(request, switch_off)
        code = done.status
        activation = done.result
        if activation is not None:
            was = activation.previous.version if activation.previous else "none"
            messages.success(
                request, f"Switched {artifact.path} off: no version is active (was {was})."
            )
            return redirect(artifact)
    else:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, f"Why switch it off: {error}")
    response = registry_views.artifact(request, cls=cls, tenant=tenant, slug=slug)
    response.status_code = code
    return response
