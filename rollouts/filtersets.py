"""Filters of the rollout list, shared by the page and the API: state, tenant, application."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import Tenant
from accounts.selectors import tenants_visible_to
from rollouts import selectors
from rollouts.choices import RolloutState, RolloutStrategy
from rollouts.models import Application, Rollout


def _tenants(request: HttpRequest | None) -> QuerySet[Tenant]:
    if request is None:
        return Tenant.objects.none()
    return tenants_visible_to(request.user).order_by("slug")


def _applications(request: HttpRequest | None) -> QuerySet[Application]:
    if request is None:
        return Application.objects.none()
    return selectors.applications_visible_to(request.user).order_by("slug")


class RolloutFilterSet(django_filters.FilterSet):
    """Filters of the rollout list."""

    state = django_filters.ChoiceFilter(choices=RolloutState.choices, label="State")
    strategy = django_filters.ChoiceFilter(choices=RolloutStrategy.choices, label="Strategy")
    tenant = django_filters.ModelChoiceFilter(
        field_name="tenant",
        to_field_name="slug",
        queryset=_tenants,  # type: ignore[arg-type]  # django-filter calls it with the request
        label="Tenant",
    )
    application = django_filters.ModelChoiceFilter(
        field_name="targets__slot__application",
        to_field_name="slug",
        queryset=_applications,  # type: ignore[arg-type]
        label="Application",
        distinct=True,
    )

    class Meta:
        model = Rollout
        fields = ["state", "strategy", "tenant", "application"]
