"""Waivers: a failed review check (or one change-gate metric) excused until a date.

They belong to the reviews floor (they exist to excuse its checks and gates), but their
tables, admin pages and event subjects keep the ``governance`` label they were born with
(``governance_waiver``, ``/admin/governance/waiver/``, ``governance.waiver`` in the signed
log), so moving the code changed nothing a database, a link or a verifier sees.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from governance.kernel.numbering import format_number
from governance.kernel.triggers import undeletable
from reviews.choices import CheckKind
from reviews.waivers.choices import WaiverState

#: The app the waiver tables are registered under (their names, migrations and admin URLs).
APP_LABEL = "governance"


class WaiverCounter(models.Model):
    """The last waiver number handed out in a year, so ids read ``WV-2026-0007`` and never repeat."""

    year = models.PositiveIntegerField(primary_key=True)
    last = models.PositiveIntegerField(default=0)

    class Meta:
        app_label = APP_LABEL
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
        app_label = APP_LABEL
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
        return format_number("WV", self.year, self.number)

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
