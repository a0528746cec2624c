"""Admin for cross-cutting governance records. The event log is read-only here, as everywhere."""

from __future__ import annotations

from django.contrib import admin

from governance.kernel.admin import ReadOnlyAdmin
from governance.kernel.events.models import Checkpoint, Event, SigningKey, VerificationRun
from governance.kernel.models import Notification, WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ("worker", "last_beat_at", "beats")


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("seq", "time", "kind", "tenant", "actor_name", "via", "subject_label")
    list_filter = ("kind", "tenant")
    search_fields = ("actor_name", "subject_id", "subject_label", "entry_hash")
    list_select_related = ("tenant",)
    exclude = ("header", "payload_bytes")
    show_full_result_count = False


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ("tree_size", "root_hash", "time", "key_id")
    exclude = ("body",)


@admin.register(SigningKey)
class SigningKeyAdmin(ReadOnlyAdmin):
    list_display = ("kid", "status", "created_at", "retired_at", "public_key")


@admin.register(VerificationRun)
class VerificationRunAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "status", "checked", "total", "first_bad_seq", "requested_by")


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("user", "title", "created_at", "read_at", "emailed_at")
    search_fields = ("user__username", "title", "dedupe_key")
    list_select_related = ("user",)
