"""Application and slot pages: creating and editing them, and a tenant's override."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.models import Tenant, User
from accounts.selectors import tenants_administered_by, tenants_visible_to
from governance.kernel.errors import NotFound
from governance.kernel.views import post_only, submit
from registry import selectors as registry_selectors
from rollouts import (
    permissions,
    selectors,
    services,
)
from rollouts.forms import (
    ApplicationEditForm,
    ApplicationForm,
    OverrideForm,
    SlotDescriptionForm,
    SlotForm,
)
from rollouts.models import Application, Slot
from rollouts.views.common import (
    application_or_404,
    slot_or_404,
    user_of,
)

#: The new-slot form shares the application page with the edit form (both have a name and a
#: description): ids of its own, so that each label names its own field.
SLOT_FORM_IDS = "slot_%s"


@login_required
def application_list(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    applications = (
        selectors.applications_visible_to(user)
        .select_related("tenant")
        .prefetch_related("slots__artifact__active_version")
        .order_by("slug")
    )
    return render(
        request,
        "rollouts/applications.html",
        {
            "applications": applications,
            "may_create": tenants_administered_by(user).exists(),
            "platform": settings.PLATFORM_TENANT_SLUG,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def application_new(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    tenants = list(tenants_administered_by(user).order_by("slug").values_list("slug", flat=True))
    if not tenants:
        messages.error(request, "Only an administrator of a tenant can create an application.")
        return redirect("rollouts:applications")
    form = ApplicationForm(request.POST or None, tenants=tenants)
    status = 200
    if request.method == "POST":

        def create(data: dict[str, Any]) -> Application:
            tenant = next(t for t in tenants_administered_by(user) if t.slug == data["tenant"])
            return services.application_create(
                tenant=tenant,
                slug=data["slug"],
                name=data["name"],
                description=data["description"],
                actor=user,
            )

        done = submit(form, create, invalid_status=400)
        if done.ok and done.result is not None:
            messages.success(request, f"Created the application {done.result.slug}.")
            return redirect(done.result)
        status = done.status
    return render(request, "rollouts/application_form.html", {"form": form}, status=status)


def _application_page(
    request: HttpRequest,
    application: Application,
    *,
    slot_form: SlotForm | None = None,
    edit_form: ApplicationEditForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = user_of(request)
    may_edit = permissions.can_manage_application(user, application.tenant)
    slots = list(selectors.slots_of(application).order_by("name"))
    may_manage = permissions.can_manage_slots(user, application)
    return render(
        request,
        "rollouts/application.html",
        {
            "application": application,
            "slots": slots,
            "slot_form": (slot_form or SlotForm(auto_id=SLOT_FORM_IDS)) if may_manage else None,
            "edit_form": (
                edit_form
                or ApplicationEditForm(
                    initial={"name": application.name, "description": application.description}
                )
            )
            if may_edit
            else None,
            "rollouts": list(
                selectors.rollouts_visible_to(user)
                .filter(targets__slot__application=application)
                .select_related("tenant", "change")
                .distinct()
                .order_by("-number")[:20]
            ),
        },
        status=status,
    )


@login_required
def application_detail(request: HttpRequest, slug: str) -> HttpResponse:
    return _application_page(request, application_or_404(request, slug))


@login_required
@post_only("rollouts:application", "slug")
def application_edit(request: HttpRequest, slug: str) -> HttpResponse:
    application = application_or_404(request, slug)
    user = user_of(request)
    allowed = permissions.can_manage_application(user, application.tenant)
    if not allowed:
        messages.error(request, allowed.reason)
        return _application_page(request, application, status=403)
    form = ApplicationEditForm(request.POST)
    done = submit(
        form,
        lambda data: services.application_update(
            application=application, name=data["name"], description=data["description"], actor=user
        ),
        invalid_status=400,
    )
    if not done.ok or done.result is None:
        return _application_page(request, application, edit_form=form, status=done.status)
    messages.success(request, f"Saved {done.result.slug}.")
    return redirect(done.result)


@login_required
@post_only("rollouts:application", "slug")
def slot_new(request: HttpRequest, slug: str) -> HttpResponse:
    application = application_or_404(request, slug)
    user = user_of(request)
    allowed = permissions.can_manage_slots(user, application)
    if not allowed:
        messages.error(request, allowed.reason)
        return _application_page(request, application, status=403)
    form = SlotForm(request.POST, auto_id=SLOT_FORM_IDS)

    def create(data: dict[str, Any]) -> Slot:
        return services.slot_create(
            application=application,
            name=data["name"],
            artifact=_slot_artifact(application, data["artifact"]),
            description=data["description"],
            actor=user,
        )

    done = submit(form, create, invalid_status=400)
    if not done.ok or done.result is None:
        return _application_page(request, application, slot_form=form, status=done.status)
    messages.success(
        request, f"Created the slot {done.result}: its default is the artifact's active version."
    )
    return redirect(done.result)


def _slot_artifact(application: Application, path: str) -> Any:
    """The artifact a slot binds: of the application's tenant or of the platform; else not found."""
    parts = path.strip().strip("/").split("/")
    allowed = {application.tenant.slug, settings.PLATFORM_TENANT_SLUG}
    if len(parts) != 3 or parts[1] not in allowed:
        raise NotFound(
            f"No artifact '{path}' of {application.tenant.slug} or the platform.", field="artifact"
        )
    try:
        return registry_selectors.artifact_by_path_unscoped(*parts)
    except NotFound as exc:
        raise NotFound(exc.message, field="artifact") from exc


def _override_tenants(user: User, slot: Slot) -> list[Tenant]:
    """The tenants whose override of ``slot`` this person may set: those the slot serves, where
    ``permissions.can_set_override`` allows them."""
    return [
        tenant
        for tenant in tenants_visible_to(user).order_by("slug")
        if selectors.slot_serves_tenant(slot, tenant) and permissions.can_set_override(user, tenant)
    ]


def _slot_page(
    request: HttpRequest,
    slot: Slot,
    *,
    override_form: OverrideForm | None = None,
    description_form: SlotDescriptionForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = user_of(request)
    may_edit = permissions.can_manage_slots(user, slot.application)
    overrides = list(
        selectors.overrides_for([slot]).select_related("set_by").order_by("tenant__slug")
    )
    override_tenants = [t.slug for t in _override_tenants(user, slot)]
    return render(
        request,
        "rollouts/slot.html",
        {
            "slot": slot,
            "default": slot.artifact.active_version,
            "overrides": overrides,
            "history": list(selectors.slot_history(slot)),
            "active_rollouts": [
                target.rollout for target in selectors.active_rollouts_for([slot]).get(slot.pk, [])
            ],
            "override_form": (override_form or OverrideForm(tenants=override_tenants))
            if override_tenants
            else None,
            "description_form": (
                description_form or SlotDescriptionForm(initial={"description": slot.description})
            )
            if may_edit
            else None,
        },
        status=status,
    )


@login_required
def slot_detail(request: HttpRequest, slug: str, name: str) -> HttpResponse:
    return _slot_page(request, slot_or_404(request, slug, name))


@login_required
@post_only("rollouts:slot", "slug", "name")
def slot_edit(request: HttpRequest, slug: str, name: str) -> HttpResponse:
    slot = slot_or_404(request, slug, name)
    user = user_of(request)
    allowed = permissions.can_manage_slots(user, slot.application)
    if not allowed:
        messages.error(request, allowed.reason)
        return _slot_page(request, slot, status=403)
    form = SlotDescriptionForm(request.POST)
    done = submit(
        form,
        lambda data: services.slot_update(slot=slot, description=data["description"], actor=user),
        invalid_status=400,
    )
    if not done.ok:
        return _slot_page(request, slot, description_form=form, status=done.status)
    messages.success(request, f"Saved the description of {slot}.")
    return redirect(slot)


@login_required
@post_only("rollouts:slot", "slug", "name")
def slot_override(request: HttpRequest, slug: str, name: str) -> HttpResponse:
    slot = slot_or_404(request, slug, name)
    user = user_of(request)
    tenants = {t.slug: t for t in _override_tenants(user, slot)}
    form = OverrideForm(request.POST, tenants=sorted(tenants))
    if not form.is_valid():
        if not tenants:
            messages.error(request, "Only an administrator of the tenant can set its override.")
            return _slot_page(request, slot, status=403)
        return _slot_page(request, slot, override_form=form, status=400)
    done = submit(form, lambda data: _override_apply(slot, tenants[data["tenant"]], data, user))
    if not done.ok or done.result is None:
        return _slot_page(request, slot, override_form=form, status=done.status)
    messages.success(request, done.result)
    return redirect(slot)


def _override_apply(slot: Slot, tenant: Tenant, data: dict[str, Any], user: User) -> str:
    """Set the override to the version named, or clear it when none is; the message to show."""
    version_text = data["version"].strip()
    if not version_text:
        services.override_clear(slot=slot, tenant=tenant, reason=data["reason"], actor=user)
        return f"Cleared {tenant.slug}'s override of {slot}: it gets the default again."
    version = slot.artifact.versions.filter(version=version_text).first()
    if version is None:
        raise NotFound(f"{slot.artifact.path} has no version {version_text}.", field="version")
    services.override_set(
        slot=slot, tenant=tenant, version=version, reason=data["reason"], actor=user
    )
    return f"{tenant.slug} now gets {version_text} from {slot}."
