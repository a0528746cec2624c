"""Filters for the artifact list, shared by the page and the API."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from registry.models import Artifact


class ArtifactFilterSet(django_filters.FilterSet):
    artifact_class = django_filters.CharFilter(field_name="artifact_class__slug", label="Class")
    tenant = django_filters.CharFilter(field_name="tenant__slug", label="Tenant")
    owner = django_filters.CharFilter(field_name="owner__username", label="Owner")
    q = django_filters.CharFilter(method="search", label="Search")

    class Meta:
        model = Artifact
        fields = ["artifact_class", "tenant", "owner", "q"]

    def search(self, queryset: QuerySet[Artifact], _name: str, value: str) -> QuerySet[Artifact]:
        return queryset.filter(
            Q(slug__icontains=value) | Q(title__icontains=value) | Q(summary__icontains=value)
        )
