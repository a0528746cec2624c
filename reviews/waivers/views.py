"""The waiver pages: list, page, grant, renew, revoke, countersign.

Views check the shape of input; every rule lives in ``reviews.waivers.services``. A waiver
another tenant's (or none) is ``NotFound``, which the DomainErrorMiddleware shows as the 404
page; a refused service call is a message on the form (``governance.kernel.views.submit``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from accounts.models import Tenant, User
from accounts.selectors import access_by_tenant, tenant_for_user
from governance.kernel import reauth
from governance.kernel.errors import DomainError, NotFound
from governance.kernel.permissions import Decision
from governance.kernel.views import post_only, say_above, submit
from registry import selectors as registry_selectors
from registry.models import Artifact
from reviews import selectors as review_selectors
from reviews.choices import CheckKind
from reviews.waivers import permissions, selectors, services
from reviews.waivers.choices import WaiverState
from reviews.waivers.filters import WaiverFilterSet
from reviews.waivers.forms import (
    WaiverCountersignForm,
    WaiverForm,
    WaiverRenewForm,
    WaiverRevokeForm,
)
from reviews.waivers.models import Waiver
from reviews.waivers.permissions import (
    can_countersign_waiver,
    can_grant_waiver,
    can_renew_waiver,
    can_revoke_waiver,
    may_grant_waivers,
    waiver_actions,
)

WAIVER_PAGE_SIZE = 50


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _waiver(request: HttpRequest, reference: str) -> Waiver:
    """The waiver if this person may see it; otherwise NotFound (the 404 page)."""
    return selectors.waiver_by_reference(reference, visible_to=request.user)


@login_required
def waiver_list(request: HttpRequest) -> HttpResponse:
    """Waivers by state, expiring soon first; the state is judged once, at one ``now``."""
    now = timezone.now()
    base = selectors.waiver_list(request.user, now)
    filters = WaiverFilterSet(request.GET or None, queryset=base, request=request)
    invalid = filters.is_bound and not filters.is_valid()
    qs = base.none() if invalid else (filters.qs if filters.is_bound else base)
    page = Paginator(qs, WAIVER_PAGE_SIZE).get_page(request.GET.get("page"))
    groups: list[tuple[str, str, list[Waiver]]] = []
    for waiver in page.object_list:
        state = waiver.state  # annotated by waivers_by_state
        if not groups or groups[-1][0] != state:
            groups.append((state, WaiverState(state).label, []))
        groups[-1][2].append(waiver)
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "governance/waiver_list.html",
        {
            "filters": filters,
            "page": page,
            "groups": groups,
            "query": params.urlencode(),
            "now": now,
            "soon_days": settings.WAIVER_EXPIRING_SOON_DAYS,
            "may_grant": may_grant_waivers(request.user),
        },
        status=400 if invalid else 200,
    )


def _waiver_page(
    request: HttpRequest,
    waiver: Waiver,
    status: int = 200,
    countersign_form: WaiverCountersignForm | None = None,
) -> HttpResponse:
    """The waiver's page; ``countersign_form``: a refused countersign, its error atop that form
    (or above the page once the page no longer offers it)."""
    now = timezone.now()
    state = waiver.state_at(now)
    can = waiver_actions(_user(request), waiver, state)
    if countersign_form is not None and not can.countersign:
        say_above(request, countersign_form)
    if can.countersign and countersign_form is None:
        countersign_form = WaiverCountersignForm(
            needs_password=not reauth.recently_confirmed(request)
        )
    lineage = selectors.waiver_lineage(waiver)
    position = next(i for i, w in enumerate(lineage) if w.pk == waiver.pk)
    return render(
        request,
        "governance/waiver_detail.html",
        {
            "waiver": waiver,
            "state": state,
            "now": now,
            "artifacts": list(waiver.artifacts.all()),
            "lineage": lineage,
            "renewed_from": lineage[position - 1] if position > 0 else None,
            "renewed_by": lineage[position + 1] if position + 1 < len(lineage) else None,
            "events": list(selectors.waiver_history(lineage)),
            "covered": selectors.changes_covered_by(waiver),
            "can": can,
            "countersign_form": countersign_form if can.countersign else None,
        },
        status=status,
    )


@login_required
def waiver_detail(request: HttpRequest, reference: str) -> HttpResponse:
    return _waiver_page(request, _waiver(request, reference))


def _artifact_in(tenant: Tenant, text: str, user: User) -> Artifact:
    """The artifact a ``class/tenant/slug`` line names, if the user can see it; DomainError if not."""
    ref = registry_selectors.parse(text, tenant=tenant.slug)
    if ref.class_slug is None or ref.version is not None:
        raise DomainError(
            f"'{text[:80]}': name each artifact as class/tenant/slug, e.g. prompt/{tenant.slug}/qualify-lead.",
            field="artifacts",
        )
    try:
        return registry_selectors.artifact_by_path(
            ref.class_slug, ref.tenant or tenant.slug, ref.slug, visible_to=user
        )
    except NotFound as exc:
        raise DomainError(exc.message, field="artifacts") from exc


def _grant(form: WaiverForm, user: User, data: dict[str, Any]) -> Waiver | None:
    """Grant the waiver the form describes; None when a name on it does not resolve (each
    such error is on its field). A refusal raises, for :func:`submit` to put on the form."""
    tenant = tenant_for_user(user, data["tenant"])
    change = None
    change_ref = data["change"].strip()
    if change_ref:
        try:
            change = review_selectors.change_by_reference(change_ref, visible_to=user)
        except NotFound:
            form.add_error("change", f"No change request {change_ref} that you can see.")
    artifacts = []
    for path in form.artifact_paths():
        try:
            artifacts.append(_artifact_in(tenant, path, user))
        except DomainError as exc:  # every unknown artifact is named, not only the first
            form.add_error("artifacts", exc.message)
    owner = User.objects.filter(username=data["owner"].strip()).first()
    if owner is None:
        form.add_error("owner", f"{data['owner']} is not an active member of {tenant.slug}.")
    if form.errors:
        return None
    return services.waiver_grant(
        tenant=tenant,
        actor=user,
        check_kind=data["check_kind"],
        metric=data["metric"],
        change=change,
        artifacts=artifacts,
        owner=owner,
        justification=data["justification"],
        mitigation=data["mitigation"],
        advisory_links=form.links(),
        expires_at=form.expiry(),
    )


def _grant_initial(request: HttpRequest, user: User) -> dict[str, Any]:
    """``?change=CR-...&check=...`` fills in the scope from a change page."""
    initial: dict[str, Any] = {}
    change_ref = request.GET.get("change", "").strip()[:40]
    if change_ref:
        initial["change"] = change_ref
        # A reference that does not resolve is said so on the form when it is sent.
        with contextlib.suppress(DomainError):
            change = review_selectors.change_by_reference(change_ref, visible_to=user)
            initial["tenant"] = change.tenant.slug
    check = request.GET.get("check", "")
    if check in CheckKind.values:
        initial["check_kind"] = check
    return initial


@login_required
def waiver_new(request: HttpRequest) -> HttpResponse:
    """Grant a waiver; ``?change=CR-...&check=...`` fills in the scope from a change page."""
    user = _user(request)
    # Only the tenants where this person may grant (the one predicate); the form is offered
    # only to someone who may grant somewhere (an officer may not).
    tenants = [
        row.tenant.slug
        for row in access_by_tenant(user)
        if can_grant_waiver(user, row.tenant, roles=row.roles)
    ]
    may_grant = bool(tenants)
    refusal = "" if may_grant else permissions.GRANT_REASON
    form = WaiverForm(request.POST or None, tenants=tenants, initial=_grant_initial(request, user))
    status = 200 if may_grant else 403
    if request.method == "POST":
        # A refusal (403) too is a message on the form: its reason on the page, never a bare 403.
        done = submit(
            form,
            partial(_grant, form, user),
            aliases={"scope": "change"},
            invalid_status=400 if may_grant else 403,
        )
        if done.ok and done.result is not None:
            waiver = done.result
            note = (
                " It counts once a security officer countersigns it."
                if waiver.needs_security
                else ""
            )
            messages.success(request, f"Granted {waiver.reference}.{note}")
            return redirect(waiver)
        status = 400 if done.ok else done.status  # ok without a waiver: a name did not resolve
        if not may_grant:  # the form is not on the page: the service's reason is
            refusal = " ".join(str(e) for e in form.non_field_errors()) or refusal
    return render(
        request,
        "governance/waiver_form.html",
        {
            "form": form if may_grant else None,
            "refusal": refusal,
            "max_days": settings.WAIVER_MAX_DAYS,
        },
        status=status,
    )


def _refused(request: HttpRequest, waiver: Waiver, action: str, reason: str) -> HttpResponse:
    """A renew or revoke this person may not do: the page says why (403), with no form."""
    return render(
        request,
        "governance/waiver_action.html",
        {"form": None, "refusal": reason, "waiver": waiver, "action": action},
        status=403,
    )


def _refusal(form: Any) -> str:
    """The reason a refused (403) call left above the form."""
    return " ".join(str(e) for e in form.non_field_errors())


@dataclass(frozen=True)
class _Action:
    """A form page that acts on one waiver: its name, form, service call and success message."""

    name: str
    form: Any
    call: Callable[[dict[str, Any]], Waiver]
    said: Callable[[Waiver], str]
    context: dict[str, Any] = field(default_factory=dict)


def _act(request: HttpRequest, waiver: Waiver, allowed: Decision, action: _Action) -> HttpResponse:
    """Renew and revoke: refused (the reason, no form, 403) unless allowed; on POST the
    service's answer, then the waiver it left (or the form with its errors and status)."""
    if not allowed:
        return _refused(request, waiver, action.name, allowed.reason)
    status = 200
    if request.method == "POST":

        def deliberate(data: dict[str, Any]) -> Waiver:
            reauth.require_password(request, data.get("password"))  # after who may
            return action.call(data)

        done = submit(action.form, deliberate, invalid_status=400)
        if done.ok and done.result is not None:
            messages.success(request, action.said(done.result))
            return redirect(done.result)
        if done.status == 403 and not action.form.has_error("password"):
            return _refused(request, waiver, action.name, _refusal(action.form))  # no form
        status = done.status
    return render(
        request,
        "governance/waiver_action.html",
        {"form": action.form, "waiver": waiver, "action": action.name, **action.context},
        status=status,
    )


@login_required
def waiver_renew(request: HttpRequest, reference: str) -> HttpResponse:
    """A renewal is a new waiver with the same scope, linked to this one; terms may be restated."""
    waiver = _waiver(request, reference)
    user = _user(request)
    initial = {
        "justification": waiver.justification,
        "mitigation": waiver.mitigation,
        "advisory_links": "\n".join(waiver.advisory_links),
    }
    form = WaiverRenewForm(
        request.POST or None,
        initial=initial,
        needs_password=not reauth.recently_confirmed(request),
    )
    renew = _Action(
        "renew",
        form,
        lambda data: services.waiver_renew(
            waiver=waiver,
            actor=user,
            expires_at=form.expiry(),
            justification=data["justification"],
            mitigation=data["mitigation"],
            advisory_links=form.links(),
        ),
        lambda renewal: f"Renewed {waiver.reference} as {renewal.reference}.",
        {"max_days": settings.WAIVER_MAX_DAYS},
    )
    return _act(request, waiver, can_renew_waiver(user, waiver), renew)


@login_required
def waiver_revoke(request: HttpRequest, reference: str) -> HttpResponse:
    """End a waiver now; a reason is required and goes into the log."""
    waiver = _waiver(request, reference)
    user = _user(request)
    revoke = _Action(
        "revoke",
        WaiverRevokeForm(
            request.POST or None, needs_password=not reauth.recently_confirmed(request)
        ),
        lambda data: services.waiver_revoke(waiver=waiver, actor=user, reason=data["reason"]),
        lambda revoked: f"Revoked {revoked.reference}.",
    )
    return _act(request, waiver, can_revoke_waiver(user, waiver), revoke)


@login_required
@post_only("waiver-detail", "reference")
def waiver_countersign(request: HttpRequest, reference: str) -> HttpResponse:
    """A security officer's agreement to a waiver of a security check: who may first, then the
    password (a deliberate act); a refusal is said atop the countersign form (or the page)."""
    waiver = _waiver(request, reference)
    user = _user(request)
    form = WaiverCountersignForm(
        request.POST, needs_password=not reauth.recently_confirmed(request)
    )

    def countersign(data: dict[str, Any]) -> Waiver:
        can_countersign_waiver(user, waiver).require()
        reauth.require_password(request, data.get("password"))
        return services.waiver_countersign(waiver=waiver, actor=user)

    done = submit(form, countersign, invalid_status=400)
    if not done.ok:  # refused (403), a wrong password (403) or too late (409)
        return _waiver_page(request, _waiver(request, reference), done.status, form)
    messages.success(request, f"Countersigned {waiver.reference}; it counts from now.")
    return redirect(waiver)
