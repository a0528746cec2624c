"""Filters of the change list, shared by the page and the API."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import Tenant
from accounts.selectors import tenants_visible_to
from registry.models import ArtifactClass
from reviews.choices import ChangeStatus
from reviews.models import ChangeRequest


def _tenants(request: HttpRequest | None) -> QuerySet[Tenant]:
    if request is None:
        return Tenant.objects.none()
    return tenants_visible_to(request.user).order_by("slug")


def _types() -> list[tuple[str, str]]:
    return list(ArtifactClass.objects.order_by("slug").values_list("slug", "slug"))


class ChangeFilterSet(django_filters.FilterSet):
    """Filters of the change list."""

    status = django_filters.ChoiceFilter(choices=ChangeStatus.choices, label="Status")
    tenant = django_filters.ModelChoiceFilter(
        field_name="tenant",
        to_field_name="slug",
        queryset=_tenants,  # type: ignore[arg-type]  # django-filter calls it with the request
        label="Tenant",
    )
    change_type = django_filters.ChoiceFilter(choices=_types, label="Type")
    emergency = django_filters.BooleanFilter(label="Emergency")

    class Meta:
        model = ChangeRequest
        fields = ["status", "tenant", "change_type", "emergency"]
