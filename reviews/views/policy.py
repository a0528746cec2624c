"""A tenant's approval policy page."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.selectors import tenant_for_user
from governance.kernel.views import submit
from registry.highlight import highlight_json
from reviews import permissions, selectors, services
from reviews.forms import PolicyForm
from reviews.presenters import rule_rows
from reviews.views.common import user_of


@login_required
def policy(request: HttpRequest, tenant: str) -> HttpResponse:
    found = tenant_for_user(request.user, tenant)
    allowed = permissions.can_change_policy(request.user, found)
    if request.method == "POST" and not allowed:  # no form on the page: the reason, above it
        messages.error(request, allowed.reason)
    row, document = selectors.effective_policy(found)
    form = PolicyForm(request.POST or None, initial={"rules": json.dumps(document, indent=2)})
    status = 200
    if request.method == "POST" and not allowed:
        status = 403
    elif request.method == "POST":
        done = submit(
            form,
            lambda data: services.approval_policy_update(
                tenant=found, rules=data["rules"], reason=data["reason"], actor=user_of(request)
            ),
            aliases={"postmortem_days": "rules"},
            invalid_status=400,
        )
        if done.result is not None:
            messages.success(
                request, f"Saved version {done.result.number} of {found.slug}'s approval policy."
            )
            return redirect("reviews:policy", tenant=found.slug)
        status = done.status
    return render(
        request,
        "reviews/policy.html",
        {
            "tenant": found,
            "row": row,
            "own": row is not None and row.tenant_id == found.pk,
            "document": document,
            "rules": rule_rows(document),
            "policy_html": highlight_json(document),
            "history": selectors.policy_history(found)[:50],
            "form": form if allowed else None,
        },
        status=status,
    )
