"""Rollout pages: the list, starting one, a rollout (phases, steps, targets, history) and its
actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import User
from accounts.selectors import tenants_administered_by
from governance.kernel import reauth
from governance.kernel.errors import NotFound
from governance.kernel.views import post_only, submit
from reviews import selectors as review_selectors
from rollouts import (
    dashboards,
    permissions,
    presenters,
    selectors,
    services,
)
from rollouts.choices import ACTIVE_STATES, RolloutState, RolloutStrategy
from rollouts.contract import CANARY_PREREQUISITES
from rollouts.filtersets import RolloutFilterSet
from rollouts.forms import (
    RolloutActionForm,
    RolloutForm,
    default_steps_text,
    percent,
)
from rollouts.manifest import canary_blockers, manifest_build, manifest_latest
from rollouts.models import Rollout
from rollouts.views.common import (
    form_refusal,
    rollout_or_404,
    user_of,
)

PAGE_SIZE = 25
#: "Start a rollout" lists this many promoted changes waiting for one.
WAITING_LIMIT = 20
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
            "may_start": tenants_administered_by(user_of(request)).exists(),
        },
        status=200 if not filters.is_bound or filters.is_valid() else 400,
    )


# --- starting one -------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def rollout_new(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
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
    user = user_of(request)
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
    return _rollout_page(request, rollout_or_404(request, number))


@login_required
@require_GET
def rollout_dashboard(request: HttpRequest, number: int) -> HttpResponse:
    """The page's telemetry section alone: htmx polls it while the rollout runs."""
    rollout = rollout_or_404(request, number)
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
    rollout = rollout_or_404(request, number)
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
@post_only("rollouts:rollout", "number")
def rollout_action(request: HttpRequest, number: int, action: str) -> HttpResponse:
    if action not in ACTION_SERVICES:
        raise Http404(f"No action '{action}'.")
    rollout = rollout_or_404(request, number)
    user = user_of(request)
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
        refused = reauth.password_refusal(request, form)
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
            messages.error(request, form_refusal(form))  # the refusal, also above the page
            code = done.status
    rollout.refresh_from_db()
    return _rollout_page(request, rollout, bound=(action, form), status=code)
