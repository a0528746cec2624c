"""Filters of the event feed, shared by its page and the API (the waiver list's: ``reviews.waivers.filters``)."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event


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

    def filter_before(self, queryset: QuerySet[Event], _name: str, value: int) -> QuerySet[Event]:
        """Keyset pagination for the page: the next page starts below the last seq shown."""
        return queryset.filter(seq__lt=value)
