"""Cross-cutting governance models: the worker heartbeat and (from governance.events) the event log."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from governance.choices import WaiverState
from governance.triggers import undeletable
from reviews.choices import CheckKind


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
    #: Set when the email was sent (never when sending failed). Rows with it empty are the
    #: email outbox: ``notification_outbox_requeue`` queues them again.
    emailed_at = models.DateTimeField(null=True, blank=True)
    #: When its email was last handed to a worker; the outbox waits before queueing again.
    email_queued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "dedupe_key"], name="notification_once_per_key")
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


class WaiverCounter(models.Model):
    """The last waiver number handed out in a year, so ids read ``WV-2026-0007`` and never repeat."""

    year = models.PositiveIntegerField(primary_key=True)
    last = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["year"]

    def __str__(self) -> str:
        return f"{self.year}: {self.last}"


class Waiver(models.Model):
    """Lets changes pass one failed check (or one change-gate metric) until it expires.

    Its terms never change: a renewal is a new waiver linked to this one (``renews``), and
    revoking or countersigning only stamps who and when. Its state is derived from those
    stamps and the dates (:meth:`state_at`), never stored.

    Scope: ``change`` (that change only, at the revision it was granted for: a revised
    change proposes something else, so the waiver must be renewed) or ``artifacts`` (any
    change whose every artifact is listed). ``metric`` narrows a change-gates waiver to
    one metric.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, related_name="waivers")
    year = models.PositiveIntegerField()
    number = models.PositiveIntegerField()
    check_kind = models.CharField(max_length=32, choices=CheckKind.choices)
    metric = models.CharField(
        max_length=100, blank=True, help_text="Change gates only: the one metric waived."
    )
    change = models.ForeignKey(
        "reviews.ChangeRequest",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="waivers",
    )
    change_revision = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="The revision of the change it was granted for; once revised, renew it.",
    )
    artifacts = models.ManyToManyField("registry.Artifact", blank=True, related_name="waivers")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    justification = models.TextField()
    mitigation = models.TextField()
    advisory_links = models.JSONField(default=list, blank=True)
    starts_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    needs_security = models.BooleanField(default=False)
    countersigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    countersigned_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoke_reason = models.TextField(blank=True)
    renews = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="renewal"
    )

    class Meta:
        ordering = ["expires_at", "year", "number"]
        constraints = [
            models.UniqueConstraint(fields=["year", "number"], name="waiver_number_unique"),
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("starts_at")),
                name="waiver_expires_after_start",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "expires_at"], name="waiver_tenant_expiry")]
        # Countersigning and revoking stamp a waiver; a waiver is never removed.
        triggers = undeletable("waiver")

    def __str__(self) -> str:
        return f"{self.reference} ({self.get_check_kind_display()})"

    def get_absolute_url(self) -> str:
        return reverse("waiver-detail", kwargs={"reference": self.reference})

    @property
    def reference(self) -> str:
        return f"WV-{self.year}-{self.number:04d}"

    def covers_revision_of(self, change: Any) -> bool:
        """A change-scoped waiver covers the revision it was granted for (older rows: any)."""
        return self.change_revision is None or self.change_revision == change.revision

    def state_at(self, now: datetime) -> WaiverState:
        """The state at ``now``; one fixed ``now`` per decision keeps a decision consistent."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return WaiverState.REVOKED
        if now >= self.expires_at:
            return WaiverState.EXPIRED
        if self.needs_security and self.countersigned_at is None:
            return WaiverState.PENDING
        if self.expires_at - now <= timedelta(days=settings.WAIVER_EXPIRING_SOON_DAYS):
            return WaiverState.EXPIRING_SOON
        return WaiverState.ACTIVE


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
    "Waiver",
    "WaiverCounter",
    "WorkerHeartbeat",
]
