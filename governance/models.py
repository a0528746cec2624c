"""Cross-cutting governance models: the worker heartbeat and (from governance.events) the event log."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class WorkerHeartbeat(models.Model):
    """The last time a Celery worker ran the periodic heartbeat task; one row per worker host."""

    worker = models.CharField(max_length=200, unique=True)
    last_beat_at = models.DateTimeField(default=timezone.now)
    beats = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-last_beat_at"]

    def __str__(self) -> str:
        return f"{self.worker} @ {self.last_beat_at:%Y-%m-%d %H:%M:%S}"


class Notification(models.Model):
    """Something a person must act on or know about, shown in the app and sent by email.

    ``dedupe_key`` makes a notification idempotent: sending the same key to the same
    person twice (a retried task, a beat that ran late) leaves one row and one email.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    tenant = models.ForeignKey(
        "accounts.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    dedupe_key = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "dedupe_key"], name="notification_once_per_key")
        ]
        indexes = [models.Index(fields=["user", "read_at"], name="notification_unread")]

    def __str__(self) -> str:
        return f"{self.user}: {self.title}"


# The event log lives in its own module; importing it here registers it with the app.
from governance.events.models import (  # noqa: E402
    Checkpoint,
    Event,
    EventChainHead,
    SigningKey,
    VerificationRun,
)

__all__ = [
    "Checkpoint",
    "Event",
    "EventChainHead",
    "Notification",
    "SigningKey",
    "VerificationRun",
    "WorkerHeartbeat",
]
