"""The kernel's own tables: notifications (with their email outbox) and worker heartbeats.

They belong to the ``governance`` Django app (its migrations); the event log's tables are in
:mod:`governance.kernel.events.models`.
"""

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
    person twice (a retried task, a beat that ran late) leaves one open row and one email.
    ``subject`` names the reason it exists ("change:12:review"): a person has at most one
    open notification per subject, and it is *resolved* (``resolved_at``, ``resolution``)
    by the service that makes the reason go away.
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
    #: Why it exists, so the service that ends the reason can resolve it ("" for news).
    subject = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    #: When its reason went away (the change was approved, the check passed, ...).
    resolved_at = models.DateTimeField(null=True, blank=True)
    #: Why it was resolved, shown on the notifications page.
    resolution = models.CharField(max_length=300, blank=True, default="")
    #: Set when the email was sent (never when sending failed). Rows with it empty are the
    #: email outbox: ``notification_outbox_requeue`` queues them again.
    emailed_at = models.DateTimeField(null=True, blank=True)
    #: When its email was last handed to a worker; the outbox waits before queueing again.
    email_queued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Resolved rows are history: the same reason coming back notifies again.
            models.UniqueConstraint(
                fields=["user", "dedupe_key"],
                name="notification_once_per_key",
                condition=models.Q(resolved_at__isnull=True),
            ),
            models.UniqueConstraint(
                fields=["user", "subject"],
                name="notification_one_open_per_subject",
                condition=models.Q(resolved_at__isnull=True) & ~models.Q(subject=""),
            ),
        ]
        indexes = [
            models.Index(fields=["user", "read_at"], name="notification_unread"),
            models.Index(
                fields=["created_at"],
                name="notification_email_outbox",
                condition=models.Q(emailed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.title}"
