"""API serializers every floor uses: one log entry in a record's history."""

from __future__ import annotations

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
