"""Action-eligible artifacts from the browser: the flag, the deputy, and the safety switch.

Refused forms come back on the artifact page with their errors and the refusal's status;
someone who is not offered a form gets the reason above the page (403). Engaging or
releasing the switch is a deliberate act: the password is confirmed first.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from governance.kernel import reauth
from governance.kernel.views import post_only, say_above, submit
from registry import selectors, services
from registry.forms import ActionEligibleForm, DeputyForm, SafetySwitchForm
from registry.models import Artifact, SafetySwitch
from registry.permissions import can_flip_safety_switch, can_set_action_eligible, can_set_deputy
from registry.views.pages import actor_of, artifact_page, members


def _refused(request: HttpRequest, found: Artifact, reason: str) -> HttpResponse:
    messages.error(request, reason)
    return artifact_page(request, found, status=403)


@login_required
@post_only("registry:artifact", "cls", "tenant", "slug")
def artifact_action_eligible(
    request: HttpRequest, cls: str, tenant: str, slug: str
) -> HttpResponse:
    found = selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
    allowed = can_set_action_eligible(request.user, found)
    if not allowed:
        return _refused(request, found, allowed.reason)
    form = ActionEligibleForm(request.POST)

    def flag(data: dict[str, Any]) -> Artifact:
        return services.artifact_action_eligible_set(
            artifact=found, value=data["value"], reason=data["reason"], actor=actor_of(request)
        )

    done = submit(form, flag, invalid_status=400)
    if not done.ok or done.result is None:
        return artifact_page(request, found, eligible_form=form, status=done.status)
    state = "action-eligible" if done.result.action_eligible else "not action-eligible"
    messages.success(request, f"{found.path} is {state}.")
    return redirect(found)


@login_required
@post_only("registry:artifact", "cls", "tenant", "slug")
def artifact_deputy(request: HttpRequest, cls: str, tenant: str, slug: str) -> HttpResponse:
    found = selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
    allowed = can_set_deputy(request.user, found)
    if not allowed:
        return _refused(request, found, allowed.reason)
    form = DeputyForm(request.POST, members=members(found.tenant))

    def name(data: dict[str, Any]) -> Artifact:
        return services.artifact_deputy_set(
            artifact=found, deputy=data["deputy"], actor=actor_of(request)
        )

    done = submit(form, name, invalid_status=400)
    if not done.ok or done.result is None:
        return artifact_page(request, found, deputy_form=form, status=done.status)
    deputy = done.result.deputy
    messages.success(
        request,
        f"{deputy.username} is the deputy of {found.path}."
        if deputy
        else f"{found.path} has no deputy.",
    )
    return redirect(found)


@login_required
@post_only("registry:artifact", "cls", "tenant", "slug")
def artifact_safety_switch(
    request: HttpRequest, cls: str, tenant: str, slug: str, action: str
) -> HttpResponse:
    """``action`` is ``engage`` or ``release`` (the URL says which)."""
    found = selectors.artifact_by_path(cls, tenant, slug, visible_to=request.user)
    allowed = can_flip_safety_switch(request.user, found)
    if not allowed:
        return _refused(request, found, allowed.reason)
    form = SafetySwitchForm(request.POST, needs_password=not reauth.recently_confirmed(request))
    flip = services.safety_switch_engage if action == "engage" else services.safety_switch_release

    def act(data: dict[str, Any]) -> SafetySwitch:
        reauth.require_password(request, data.get("password"))  # a deliberate act
        return flip(artifact=found, reason=data["reason"], actor=actor_of(request))

    done = submit(form, act, invalid_status=400)
    if not done.ok or done.result is None:
        if not found.action_eligible:  # the page offers no switch: say why above it
            say_above(request, form)
        return artifact_page(request, found, switch_form=form, status=done.status)
    if action == "engage":
        messages.success(
            request,
            f"Halted {found.path}: resolution names none of its versions until the switch is "
            "released (the active version is kept).",
        )
    else:
        messages.success(request, f"Released the safety switch of {found.path}: it serves again.")
    return redirect(found)
