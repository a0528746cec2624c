"""The waiver list's filters (state, tenant, check, expiring within N days), shared by the API and the CLI."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q, QuerySet
from rest_framework import serializers

from governance.choices import WaiverState
from governance.models import Waiver
from governance.selectors import waivers_by_state
from reviews.choices import CheckKind

#: The furthest ahead ``expiring_within`` looks (ten years: anything more is a typo).
MAX_EXPIRING_WITHIN_DAYS = 3650


class WaiverQuerySerializer(serializers.Serializer):
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


def waivers_matching(
    qs: QuerySet[Waiver],
    now: datetime,
    *,
    state: str | None = None,
    tenant: str | None = None,
    check: str | None = None,
    expiring_within: int | None = None,
) -> QuerySet[Waiver]:
    """``qs`` with its state at ``now`` (expiring soon first), narrowed by the filters given.

    ``expiring_within`` keeps waivers that are neither revoked nor expired at ``now`` and
    expire within that many days; a renewed waiver still shows (with ``renewed_by``).
    """
    qs = waivers_by_state(qs, now)
    if state:
        qs = qs.filter(state=state)  # type: ignore[misc]  # an annotation
    if tenant:
        qs = qs.filter(tenant__slug=tenant)
    if check:
        qs = qs.filter(check_kind=check)
    if expiring_within is not None:
        qs = qs.filter(
            Q(revoked_at__isnull=True) | Q(revoked_at__gt=now),
            expires_at__gt=now,
            expires_at__lte=now + timedelta(days=expiring_within),
        )
    return qs


def all_waivers() -> QuerySet[Waiver]:
    """Every waiver, with what its rows show (for the CLI, which acts as the system)."""
    return Waiver.objects.select_related(
        "tenant",
        "owner",
        "granted_by",
        "countersigned_by",
        "revoked_by",
        "change",
        "renews",
        "renewal",
    ).prefetch_related("artifacts__artifact_class", "artifacts__tenant")
