"""My reviews, the list of changes, opening and revising a change, its page and its signed record."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render

from accounts.models import Tenant, User
from accounts.selectors import access_by_tenant, tenant_for_user
from governance.kernel.errors import DomainError
from governance.kernel.views import submit
from registry import selectors as registry_selectors
from reviews import permissions, selectors, services
from reviews.choices import ChangeStatus
from reviews.filtersets import ChangeFilterSet
from reviews.forms import ChangeForm, ReviseForm
from reviews.models import ChangeRequest
from reviews.presenters import labels, waiting_on
from reviews.record import signed_record
from reviews.views.common import change_page, user_of

PAGE_SIZE = 25
#: How many of my own open changes "My reviews" lists (each costs a few queries).
MY_CHANGES_LIMIT = 20
#: "Waiting for you" shows this many rows, says how many there are and links to the full list.
MY_REVIEWS_LIMIT = 25
#: States in which the author still has something to do or wait for.
AUTHOR_OPEN_STATES = (
    ChangeStatus.DRAFT,
    ChangeStatus.IN_REVIEW,
    ChangeStatus.APPROVED,
    ChangeStatus.REJECTED,
)


def _check_corpus(data: dict[str, Any], tenant: Tenant) -> None:
    """Name the golden-corpus field when its reference does not resolve (a 400, on that field).

    The service reports a bad corpus reference under ``proposed`` (it resolves both the
    same way), which would point the author at the wrong field; it still checks it again.
    """
    text = data.get("golden_corpus", "").strip()
    if not text:
        return
    try:
        registry_selectors.version_in_tenant(text, tenant=tenant)
    except DomainError as exc:
        raise DomainError(exc.message, field="golden_corpus") from exc


@login_required
def index(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    everything_waiting = selectors.waiting_slots(user)
    waiting = [
        (change, labels(slots))
        for change, slots in selectors.waiting_changes(everything_waiting[:MY_REVIEWS_LIMIT])
    ]
    mine = list(
        selectors.changes_visible_to(user)
        .filter(author=user, status__in=AUTHOR_OPEN_STATES)
        .order_by("-created_at")[:MY_CHANGES_LIMIT]
    )
    return render(
        request,
        "reviews/index.html",
        {
            "waiting": waiting,
            "waiting_total": len(everything_waiting),
            "mine": [(change, waiting_on(change)) for change in mine],
            "access": access_by_tenant(user),
        },
    )


@login_required
def change_list(request: HttpRequest) -> HttpResponse:
    base = selectors.changes_visible_to(request.user)
    filters = ChangeFilterSet(request.GET or None, queryset=base, request=request)
    qs = filters.qs if filters.is_bound and filters.is_valid() else base
    page = Paginator(qs.order_by("-year", "-number"), PAGE_SIZE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "reviews/changes.html",
        {"filters": filters, "page": page, "query": params.urlencode()},
    )


def _open_change(user: User, form: ChangeForm, data: dict[str, Any]) -> ChangeRequest:
    """Open the change the form describes, in a tenant the user belongs to."""
    tenant = tenant_for_user(user, data["tenant"])
    _check_corpus(data, tenant)
    return services.change_create(
        tenant=tenant,
        actor=user,
        title=data["title"],
        description=data["description"],
        risk_note=data["risk_note"],
        rollback_plan=data["rollback_plan"],
        migration_plan=data["migration_plan"],
        proposed=form.proposed_list(),
        privacy_related=data["privacy_related"],
        external_egress=data["external_egress"],
        emergency=data["emergency"],
        golden_corpus=data["golden_corpus"].strip() or None,
    )


@login_required
def change_new(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    tenants = [row.tenant.slug for row in access_by_tenant(user)]
    initial: dict[str, Any] = {}
    propose = request.GET.get("propose", "").strip()
    if propose:
        initial["proposed"] = propose
        try:
            tenant_slug = registry_selectors.parse(propose).tenant
        except DomainError:
            tenant_slug = None
        if tenant_slug in tenants:
            initial["tenant"] = tenant_slug
    form = ChangeForm(request.POST or None, tenants=tenants, initial=initial)
    status = 200
    if request.method == "POST":
        done = submit(form, lambda data: _open_change(user, form, data), invalid_status=400)
        if done.result is not None:
            change = done.result
            messages.success(
                request,
                f"Opened {change.reference} as a draft. Submit it when it is ready for review.",
            )
            return redirect(change)
        status = done.status
    return render(
        request, "reviews/change_form.html", {"form": form, "change": None}, status=status
    )


@login_required
def change_edit(request: HttpRequest, reference: str) -> HttpResponse:
    user = user_of(request)
    change = selectors.change_by_reference(reference, visible_to=user)
    allowed = permissions.can_act_as_author(user, change, "revise")
    if not allowed:  # no form this person cannot send: the change's page says why
        messages.error(request, allowed.reason)
        return change_page(request, change, status=403)
    items = selectors.items_of(change)
    initial = ReviseForm.initial_for(change, items)
    form = ReviseForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":

        def revise(data: dict[str, Any]) -> ChangeRequest:
            proposed = form.proposed_list()
            _check_corpus(data, change.tenant)
            return services.change_revise(
                change=change,
                actor=user,
                reason=data["reason"],
                # Re-proposing the same lines would only churn the items.
                proposed=None if proposed == initial["proposed"].splitlines() else proposed,
                title=data["title"],
                description=data["description"],
                risk_note=data["risk_note"],
                rollback_plan=data["rollback_plan"],
                migration_plan=data["migration_plan"],
                privacy_related=data["privacy_related"],
                external_egress=data["external_egress"],
                emergency=data["emergency"],
                golden_corpus=data["golden_corpus"].strip(),
            )

        done = submit(form, revise, invalid_status=400)
        if done.result is not None:
            revised = done.result
            messages.success(
                request,
                f"Revised {revised.reference} to revision {revised.revision}; it is a draft "
                "again and earlier approvals no longer count. Submit it when ready.",
            )
            return redirect(revised)
        status = done.status
    return render(
        request, "reviews/change_form.html", {"form": form, "change": change}, status=status
    )


@login_required
def change_detail(request: HttpRequest, reference: str) -> HttpResponse:
    return change_page(request, selectors.change_by_reference(reference, visible_to=request.user))


@login_required
def change_record(request: HttpRequest, reference: str) -> HttpResponse:
    change = selectors.change_by_reference(reference, visible_to=request.user)
    try:
        body = signed_record(change)
    except DomainError as exc:  # a download, not a page: the refusal is JSON
        return JsonResponse({"error": exc.message}, status=exc.status_code)
    response = JsonResponse(body, json_dumps_params={"indent": 2, "ensure_ascii": False})
    response["Content-Disposition"] = f'attachment; filename="{change.reference}.json"'
    return response
