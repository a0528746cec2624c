"""The waiver list's query parameters; the filtering itself is ``governance.selectors.waivers_matching`` (shared with the CLI)."""

from __future__ import annotations

from rest_framework import serializers

from governance.choices import WaiverState
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
