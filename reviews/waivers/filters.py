"""The waiver list's filters: one filter (:func:`~reviews.waivers.selectors.waivers_matching`),
reached three ways: the page's filter form (:class:`WaiverFilterSet`), the API's query
parameters (:class:`WaiverQuerySerializer`) and the CLI's options (``manage.py governance waivers``).
Each way only reads and checks its input; the filtering is the selector's.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from rest_framework import serializers

from accounts.models import Tenant
from accounts.selectors import tenants_visible_to
from reviews.choices import CheckKind
from reviews.waivers.choices import STATE_ORDER, WaiverState
from reviews.waivers.models import Waiver
from reviews.waivers.selectors import WaiverQuery, waivers_matching

#: The furthest ahead ``expiring_within`` looks (ten years: anything more is a typo).
MAX_EXPIRING_WITHIN_DAYS = 3650


def _visible_tenants(request: HttpRequest | None) -> QuerySet[Tenant]:
    if request is None:
        return Tenant.objects.none()
    return tenants_visible_to(request.user).order_by("slug")


class WaiverFilterSet(django_filters.FilterSet):
    """The page's filter form: state (derived at one moment), tenant and the waived check."""

    state = django_filters.MultipleChoiceFilter(
        choices=[(s.value, s.label) for s in STATE_ORDER],
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

    def filter_queryset(self, queryset: QuerySet[Waiver]) -> QuerySet[Waiver]:
        """The one filter, with the form's cleaned values (the state judged at one ``now``)."""
        data: dict[str, Any] = self.form.cleaned_data
        tenant = data.get("tenant")
        query = WaiverQuery(
            state=data.get("state") or None,
            tenant=tenant.slug if tenant is not None else None,
            check=data.get("check") or None,
        )
        return waivers_matching(queryset, timezone.now(), query)


class WaiverQuerySerializer(serializers.Serializer[Any]):
    """Query parameters of ``GET /api/v1/waivers/``; each one narrows the list."""

    state = serializers.ChoiceField(
        choices=WaiverState.choices, required=False, help_text="The state now."
    )
    tenant = serializers.CharField(required=False, max_length=63, help_text="Tenant slug.")
    check = serializers.ChoiceField(
        choices=CheckKind.choices, required=False, help_text="The check waived."
    )
    expiring_within = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_EXPIRING_WITHIN_DAYS,
        help_text="Only waivers still in force that expire within this many days.",
    )
