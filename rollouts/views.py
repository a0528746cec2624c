"""Rollout pages: the list, a rollout (phases, steps, targets, history, actions), the runtime matrix,
applications and slots.

Views check the shape of input and call the service through ``governance.kernel.views.submit``,
which turns a refusal into a form error with its 4xx status (a ``NotFound`` raised out of a
view is the 404 page); every rule lives in ``rollouts.services``, and every button is shown
from the permission predicate the service enforces.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Case, When
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Tenant, User
from accounts.selectors import tenants_administered_by, tenants_visible_to
from governance.kernel.errors import NotFound
from governance.kernel.views import submit
from registry import selectors as registry_selectors
from reviews import reauth
from reviews import selectors as review_selectors
from rollouts import (
    dashboards,
    permissions,
    presenters,
    selectors,
    services,
    telemetry_selectors,
)
from rollouts.choices import ACTIVE_STATES, RolloutState, RolloutStrategy
from rollouts.contract import CANARY_PREREQUISITES
from rollouts.filtersets import RolloutFilterSet
from rollouts.forms import (
    ApplicationEditForm,
    ApplicationForm,
    OverrideForm,
    RolloutActionForm,
    RolloutForm,
    SlotDescriptionForm,
    SlotForm,
    default_steps_text,
    percent,
)
from rollouts.manifest import canary_blockers, manifest_build, manifest_latest
from rollouts.models import Application, Rollout, Slot

PAGE_SIZE = 25
#: "Start a rollout" lists this many promoted changes waiting for one.
WAITING_LIMIT = 20
PASSWORD_MISSING = "Confirm your password: it is a deliberate act."  # noqa: S105 (a message)
PASSWORD_WRONG = "That is not your password. Nothing changed."  # noqa: S105 (a message)


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _rollout_or_404(request: HttpRequest, number: int) -> Rollout:
    return selectors.rollout_by_number(request.user, number)  # NotFound: the 404 page


def _application_or_404(request: HttpRequest, slug: str) -> Application:
    return selectors.application_by_slug(request.user, slug)  # NotFound: the 404 page


def _slot_or_404(request: HttpRequest, slug: str, name: str) -> Slot:
    application = _application_or_404(request, slug)
    slot = selectors.slots_of(application).filter(name=name).first()
    if slot is None:
        raise Http404(f"No slot '{name}' in {application.slug}.")
    return slot


def _refusal(form: Any) -> str:
    """The refusal ``submit`` put on ``form``: the only error of a form that was valid."""
    return next(str(errors[0]) for errors in form.errors.values())


def _password_ok(request: HttpRequest, form: RolloutActionForm) -> int | None:
    """None when the password is confirmed (now or lately); else the status, with the error on the form."""
    if not form.needs_password:
        return None
    password = form.cleaned_data.get("password", "")
    if not password:
        form.add_error("password", PASSWORD_MISSING)
        return 400
    if not reauth.confirm(request, password):
        form.add_error("password", PASSWORD_WRONG)
        return 403
    return None


# --- the list -------------------------------------------------------------------------------


@login_required
def rollout_list(request: HttpRequest) -> HttpResponse:
    base = selectors.rollouts_visible_to(request.user).select_related(
        "tenant", "change", "created_by"
    )
    filters = RolloutFilterSet(request.GET or None, queryset=base, request=request)
    qs = filters.qs if filters.is_bound and filters.is_valid() else base
    qs = qs.prefetch_related(
        "targets__slot__application", "targets__candidate", "targets__baseline"
    ).order_by("-number")
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "rollouts/list.html",
        {
            "filters": filters,
            "page": page,
            "query": params.urlencode(),
            "may_start": tenants_administered_by(_user(request)).exists(),
        },
        status=200 if not filters.is_bound or filters.is_valid() else 400,
    )


# --- starting one -------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def rollout_new(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    reference = (request.POST.get("change") or request.GET.get("change") or "").strip()
    change = None
    if reference:
        try:
            change = review_selectors.change_by_reference(reference, visible_to=user)
        except NotFound:
            change = None
    initial: dict[str, Any] = {}
    if change is not None:
        initial = {
            "change": change.reference,
            "strategy": change.rollout_strategy,
            "steps": default_steps_text(change.rollout_strategy),
        }
    form = RolloutForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":

        def create(data: dict[str, Any]) -> Rollout:
            if change is None:
                raise NotFound(f"No change request '{reference}' that you can see.", field="change")
            permissions.can_create_rollout(user, change).require()
            return services.rollout_create(
                change=change,
                actor=user,
                strategy=data["strategy"],
                steps=data["steps_value"],
                target=data["target"],
                cohort=data["cohort_value"],
                flag_key=data["flag_key"].strip(),
                flag_expires_at=data["flag_expires_at"],
                reason=data["reason"],
            )

        done = submit(form, create, aliases={"flag": "flag_key"}, invalid_status=400)
        if done.ok and done.result is not None and change is not None:
            messages.success(
                request,
                f"Created {done.result.reference} from {change.reference} as a draft: "
                "nothing serves differently until you start it.",
            )
            return redirect(done.result)
        status = done.status
    waiting = [] if change else list(selectors.changes_awaiting_rollout(user)[:WAITING_LIMIT])
    return render(
        request,
        "rollouts/rollout_form.html",
        {"form": form, "change": change, "waiting": waiting},
        status=status,
    )


# --- a rollout ----------------------------------------------------------------------------


def _rollout_page(
    request: HttpRequest,
    rollout: Rollout,
    *,
    bound: tuple[str, RolloutActionForm] | None = None,
    status: int = 200,
) -> HttpResponse:
    user = _user(request)
    targets = list(selectors.targets_of(rollout))
    allowed = permissions.can_operate_rollout(user, rollout)
    manifest = manifest_build(rollout)
    phases = presenters.phase_views(manifest)
    events = list(selectors.rollout_events(rollout))
    # What stops the canary's next step: asked only when a prerequisite phase does not pass.
    blockers = (
        canary_blockers(rollout)
        if rollout.strategy == RolloutStrategy.CANARY
        and rollout.state in {RolloutState.DRAFT, *ACTIVE_STATES}
        and not all(p.status == "pass" for p in phases if p.name in CANARY_PREREQUISITES)
        else []
    )
    return render(
        request,
        "rollouts/rollout.html",
        {
            "rollout": rollout,
            "targets": targets,
            "steps": presenters.steps_of(rollout),
            "weight": percent(rollout.weight),
            "phases": phases,
            "blockers": blockers,
            "manifest_status": manifest.get("status", ""),
            "stored_manifest": manifest_latest(rollout),
            "moves": list(
                selectors.moves_of(rollout).select_related(
                    "slot__application", "tenant", "from_version", "to_version", "actor"
                )
            ),
            "events": events,
            "dash": dashboards.rollout_dashboard(rollout, events),
            "actions": presenters.action_views(
                rollout,
                targets,
                actions=permissions.rollout_actions(user, rollout),
                needs_password=not reauth.recently_confirmed(request),
                bound=bound,
            ),
            "refusal": "" if allowed else allowed.reason,
        },
        status=status,
    )


@login_required
def rollout_detail(request: HttpRequest, number: int) -> HttpResponse:
    return _rollout_page(request, _rollout_or_404(request, number))


@login_required
@require_GET
def rollout_dashboard(request: HttpRequest, number: int) -> HttpResponse:
    """The page's telemetry section alone: htmx polls it while the rollout runs."""
    rollout = _rollout_or_404(request, number)
    events = list(selectors.rollout_events(rollout))
    return render(
        request,
        "rollouts/_dashboard.html",
        {"rollout": rollout, "dash": dashboards.rollout_dashboard(rollout, events)},
    )


def _flag_switch(*, rollout: Rollout, actor: User, revision: int, reason: str) -> Rollout:
    """The flag action switches the flag to the other position."""
    return services.rollout_flag_set(
        rollout=rollout, on=not rollout.flag_on, actor=actor, revision=revision, reason=reason
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


ACTION_SERVICES: dict[str, Callable[..., Rollout]] = {
    "start": services.rollout_start,
    "flag": _flag_switch,
    "advance": services.rollout_advance,
    "pause": services.rollout_pause,
    "resume": services.rollout_resume,
    "abort": services.rollout_abort,
    "rollback": services.rollout_rollback,
}


@login_required
def rollout_manifest(request: HttpRequest, number: int) -> HttpResponse:
    """The rollout's phase manifest as derived now (the JSON the page's timeline shows)."""
    rollout = _rollout_or_404(request, number)
    response = JsonResponse(
        manifest_build(rollout), json_dumps_params={"indent": 2, "ensure_ascii": False}
    )
    response["Content-Disposition"] = (
        f'attachment; filename="{rollout.reference}-phase-manifest.json"'
    )
    return response


ACTION_VERBS = {
    "start": "start",
    "flag": "switch the flag of",
    "advance": "advance",
    "pause": "pause",
    "resume": "resume",
    "abort": "abort",
    "rollback": "roll back",
}
ACTION_DONE = {
    "start": "Started",
    "flag": "Switched the flag of",
    "advance": "Advanced",
    "pause": "Paused",
    "resume": "Resumed",
    "abort": "Aborted",
    "rollback": "Rolled back",
}


@login_required
@require_POST
def rollout_action(request: HttpRequest, number: int, action: str) -> HttpResponse:
    if action not in ACTION_SERVICES:
        raise Http404(f"No action '{action}'.")
    rollout = _rollout_or_404(request, number)
    user = _user(request)
    allowed = permissions.can_operate_rollout(user, rollout, ACTION_VERBS[action])
    if not allowed:  # no form on the page for this person: the reason, as a message
        messages.error(request, allowed.reason)
        return _rollout_page(request, rollout, status=403)
    form = RolloutActionForm(
        request.POST,
        needs_password=not reauth.recently_confirmed(request),
        reason_required=action in presenters.REASON_REQUIRED,
        prefix=action,
    )
    code = 400
    if form.is_valid():
        refused = _password_ok(request, form)
        if refused is not None:
            code = refused
        else:
            done = submit(
                form,
                lambda data: ACTION_SERVICES[action](
                    rollout=rollout, actor=user, revision=data["revision"], reason=data["reason"]
                ),
            )
            if done.ok and done.result is not None:
                now = presenters.state_text(done.result, list(selectors.targets_of(done.result)))
                messages.success(request, f"{ACTION_DONE[action]} {done.result.reference}: {now}.")
                return redirect(done.result)
            messages.error(request, _refusal(form))  # the refusal, also above the page
            code = done.status
    rollout.refresh_from_db()
    return _rollout_page(request, rollout, bound=(action, form), status=code)


# --- the runtime matrix ---------------------------------------------------------------------


@login_required
def matrix(request: HttpRequest) -> HttpResponse:
    user = _user(request)
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


# --- applications and slots -----------------------------------------------------------------


@login_required
def application_list(request: HttpRequest) -> HttpResponse:
    user = _user(request)
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
    user = _user(request)
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
    user = _user(request)
    may_edit = permissions.can_manage_application(user, application.tenant)
    slots = list(selectors.slots_of(application).order_by("name"))
    may_manage = permissions.can_manage_slots(user, application)
    return render(
        request,
        "rollouts/application.html",
        {
            "application": application,
            "slots": slots,
            "slot_form": (slot_form or SlotForm()) if may_manage else None,
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
    return _application_page(request, _application_or_404(request, slug))


@login_required
@require_POST
def application_edit(request: HttpRequest, slug: str) -> HttpResponse:
    application = _application_or_404(request, slug)
    user = _user(request)
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
@require_POST
def slot_new(request: HttpRequest, slug: str) -> HttpResponse:
    application = _application_or_404(request, slug)
    user = _user(request)
    allowed = permissions.can_manage_slots(user, application)
    if not allowed:
        messages.error(request, allowed.reason)
        return _application_page(request, application, status=403)
    form = SlotForm(request.POST)

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
    user = _user(request)
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
    return _slot_page(request, _slot_or_404(request, slug, name))


@login_required
@require_POST
def slot_edit(request: HttpRequest, slug: str, name: str) -> HttpResponse:
    slot = _slot_or_404(request, slug, name)
    user = _user(request)
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
@require_POST
def slot_override(request: HttpRequest, slug: str, name: str) -> HttpResponse:
    slot = _slot_or_404(request, slug, name)
    user = _user(request)
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
