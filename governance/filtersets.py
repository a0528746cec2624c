"""Filters for the event feed and the waiver list, shared by the pages and the API."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import Tenant
from accounts.selectors import tenants_visible_to
from governance.choices import STATE_ORDER
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.models import Waiver
from governance.selectors import waiver_state_case
from reviews.choices import CheckKind


class EventFilterSet(django_filters.FilterSet):
    kind = django_filters.MultipleChoiceFilter(choices=EventKind.choices)
    actor = django_filters.CharFilter(field_name="actor_name", label="Actor (username)")
    tenant = django_filters.CharFilter(field_name="tenant__slug", label="Tenant")
    subject_type = django_filters.CharFilter(label="Subject type")
    subject_id = django_filters.CharFilter(label="Subject id")
    since = django_filters.IsoDateTimeFilter(field_name="time", lookup_expr="gte", label="Since")
    until = django_filters.IsoDateTimeFilter(field_name="time", lookup_expr="lt", label="Until")
    before = django_filters.NumberFilter(method="filter_before", label="Before sequence number")

    class Meta:
        model = Event
        fields = ["kind", "actor", "tenant", "subject_type", "subject_id", "since", "until"]

    def filter_before(self, queryset: QuerySet[Event], name: str, value: int) -> QuerySet[Event]:
        """Keyset pagination for the page: the next page starts below the last seq shown."""
        return queryset.filter(seq__lt=value)


def _visible_tenants(request: HttpRequest | None) -> QuerySet[Tenant]:
    if request is None:
        return Tenant.objects.none()
    return tenants_visible_to(request.user).order_by("slug")


class WaiverFilterSet(django_filters.FilterSet):
    """Filters of the waiver list: state (derived at one moment), tenant and the waived check."""

    state = django_filters.MultipleChoiceFilter(
        choices=[(s.value, s.label) for s in STATE_ORDER],
        method="filter_state",
        label="State",
        widget=forms.CheckboxSelectMultiple,
    )
    tenant = django_filters.ModelChoiceFilter(
        field_name="tenant",
        to_field_name="slug",
        queryset=_visible_tenants,  # type: ignore[arg-type]  # django-filter calls it with the request
        label="Tenant",
    )
    check = django_filters.ChoiceFilter(
        field_name="check_kind", choices=CheckKind.choices, label="Check"
    )

    class Meta:
        model = Waiver
        fields = ["state", "tenant", "check"]

    def filter_state(
        self, queryset: QuerySet[Waiver], name: str, value: list[str]
    ) -> QuerySet[Waiver]:
        """Filter on the derived state; annotate it first unless the caller already did (one ``now``)."""
        if not value:
            return queryset
        if "state" not in queryset.query.annotations:
            queryset = queryset.annotate(state=waiver_state_case(timezone.now()))
        return queryset.filter(state__in=value)  # type: ignore[misc]  # an annotation
