"""Filters of the change list, shared by the page and the API."""

from __future__ import annotations

from typing import cast

import django_filters
from django.db.models import QuerySet
from django.http import HttpRequest
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from accounts.models import Tenant, User
from accounts.selectors import tenants_visible_to
from registry.models import ArtifactClass
from reviews import selectors
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
    waiting_for_me = django_filters.BooleanFilter(
        method="filter_waiting_for_me",
        label="Only changes with an open approval slot I can fill",
    )

    class Meta:
        model = ChangeRequest
        fields = ["status", "tenant", "change_type", "emergency", "waiting_for_me"]

    @extend_schema_field(OpenApiTypes.BOOL)
    def filter_waiting_for_me(
        self, queryset: QuerySet[ChangeRequest], _name: str, value: bool | None
    ) -> QuerySet[ChangeRequest]:
        if not value or self.request is None:
            return queryset
        waiting = selectors.waiting_slots(cast(User, self.request.user))
        return queryset.filter(pk__in=[pk for pk, _ in waiting])
