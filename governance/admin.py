"""Admin for cross-cutting governance records."""

from django.contrib import admin

from governance.models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("worker", "last_beat_at", "beats")
    readonly_fields = ("worker", "last_beat_at", "beats")
