"""API serializers every floor uses: one log entry in a record's history, the error body."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from governance.kernel.events.models import Event


class HistoryEntrySerializer(serializers.ModelSerializer[Event]):
    """One log entry in a record's history (a waiver's, a change request's)."""

    actor = serializers.SerializerMethodField(help_text="Username, or null for the system.")

    class Meta:
        model = Event
        fields = ["seq", "kind", "actor", "time", "payload"]

    def get_actor(self, obj: Event) -> str | None:
        return obj.actor_name or None


class ApiErrorBodySerializer(serializers.Serializer[Any]):
    code = serializers.CharField(help_text="invalid, not_found, permission_denied, conflict, ...")
    message = serializers.CharField()
    field = serializers.CharField(
        allow_null=True, help_text="The input at fault, when there is one."
    )


class ApiErrorSerializer(serializers.Serializer[Any]):
    """Every API error: ``{"error": {"code", "message", "field"}}`` with a 4xx status."""

    error = ApiErrorBodySerializer()
