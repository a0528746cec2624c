"""A tenant's stage criteria page: the criteria in force, their history, and (for its
administrators) the form that saves a new version."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.selectors import tenant_for_user
from governance.kernel.errors import DomainError
from governance.kernel.views import submit
from registry.highlight import highlight_json
from reviews import permissions, services
from reviews.forms import StageCriteriaForm
from reviews.lifecycle import selectors as lifecycle_selectors
from reviews.views.common import user_of


@login_required
def stage_criteria(request: HttpRequest, tenant: str) -> HttpResponse:
    found = tenant_for_user(request.user, tenant)
    allowed = permissions.can_change_lifecycle_policy(request.user, found)
    if request.method == "POST" and not allowed:  # no form on the page: the reason, above it
        messages.error(request, allowed.reason)
    current = lifecycle_selectors.policy_in_force(found)
    form = StageCriteriaForm(
        request.POST or None,
        initial={
            "criteria": json.dumps(current.document, indent=2),
            "enforced": current.enforced,
            "reproducibility_tolerance": current.reproducibility_tolerance,
            "recertify_within_days": current.recertify_within_days,
        },
    )
    status = 200
    if request.method == "POST" and not allowed:
        status = 403
    elif request.method == "POST":

        def save(data: dict[str, Any]) -> Any:
            try:
                return services.lifecycle_policy_set(
                    tenant=found,
                    criteria=data["criteria"],
                    enforced=data["enforced"],
                    reproducibility_tolerance=data["reproducibility_tolerance"],
                    recertify_within_days=data["recertify_within_days"],
                    reason=data["reason"],
                    actor=user_of(request),
                )
            except DomainError as exc:  # criteria.<class>.<stage>: the message names the part
                if (exc.field or "").startswith("criteria."):
                    raise DomainError(exc.message, field="criteria", code=exc.code) from exc
                raise

        done = submit(form, save, invalid_status=400)
        if done.result is not None:
            messages.success(
                request, f"Saved version {done.result.number} of {found.slug}'s stage criteria."
            )
            return redirect("reviews:stage-criteria", tenant=found.slug)
        status = done.status
    return render(
        request,
        "reviews/stage_criteria.html",
        {
            "tenant": found,
            "current": current,
            "stages": lifecycle_selectors.criteria_table(current.document),
            "catalog": lifecycle_selectors.catalog_rows(),
            "criteria_html": highlight_json(current.document),
            "history": lifecycle_selectors.policy_history(found)[:50],
            "form": form if allowed else None,
        },
        status=status,
    )
