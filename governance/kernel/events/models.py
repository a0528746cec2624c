"""The event log's tables: events, the chain head, checkpoints, signing keys, verification runs.

An event row keeps the exact canonical bytes that were hashed and signed
(``header`` and ``payload_bytes``); the other columns are an index for
filtering and display, and verification checks that they agree with the bytes.
"""

from __future__ import annotations

import uuid

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from typing_extensions import override

from governance.kernel.events.kinds import EventKind
from governance.kernel.triggers import no_truncate

GENESIS_HASH = "0" * 64


class AppendOnlyError(Exception):
    """Raised when code tries to change or delete a row of an append-only table."""


class AppendOnlyQuerySet(models.QuerySet["Event"]):
    @override
    def update(self, **kwargs: object) -> int:
        raise AppendOnlyError("The event log is append-only: events cannot be updated.")

    @override
    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("The event log is append-only: events cannot be deleted.")


class Event(models.Model):
    """One entry of the governance log. Written only by ``event_record``; never changed."""

    seq = models.BigIntegerField(primary_key=True)
    time = models.DateTimeField(db_index=True)
    kind = models.CharField(max_length=64, choices=EventKind.choices, db_index=True)
    tenant = models.ForeignKey(
        "accounts.Tenant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150, blank=True)
    via = models.CharField(
        max_length=100, blank=True, help_text="session, token or cli it came through"
    )
    subject_type = models.CharField(max_length=100, blank=True)
    subject_id = models.CharField(max_length=100, blank=True)
    subject_label = models.CharField(max_length=200, blank=True)
    payload = models.JSONField(default=dict)
    header = models.BinaryField(help_text="RFC 8785 canonical header: the bytes that are hashed")
    payload_bytes = models.BinaryField(help_text="RFC 8785 canonical payload")
    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64, unique=True)
    key_id = models.CharField(max_length=32)
    signature = models.CharField(max_length=128)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["tenant", "-seq"], name="event_tenant_seq"),
            models.Index(fields=["subject_type", "subject_id"], name="event_subject"),
            models.Index(fields=["actor", "-seq"], name="event_actor_seq"),
        ]
        constraints = [models.CheckConstraint(condition=Q(seq__gte=1), name="event_seq_positive")]
        triggers = [
            # On PostgreSQL the database itself refuses to change or remove history.
            pgtrigger.Protect(
                name="event_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            ),
            no_truncate("event_no_truncate"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.kind}"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise AppendOnlyError("The event log is append-only: events cannot be updated.")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def get_absolute_url(self) -> str:
        return reverse("event-detail", kwargs={"seq": self.seq})

    @override
    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("The event log is append-only: events cannot be deleted.")


class EventChainHead(models.Model):
    """The single row that holds the last sequence number and hash; locked for every append.

    It also names the active signing key, so an append reads everything it needs in one locked read.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    entry_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    key_id = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=Q(id=1), name="eventchainhead_singleton")]

    def __str__(self) -> str:
        return f"head #{self.seq}"


class SigningKey(models.Model):
    """An Ed25519 public key that signs events and checkpoints. The private half lives outside the DB."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"
        REVOKED = "revoked", "Revoked"

    kid = models.CharField(max_length=32, primary_key=True)
    algorithm = models.CharField(max_length=16, default="ed25519")
    public_key = models.CharField(max_length=64, help_text="raw public key, hex")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)
    # A compromised key: what it signed after this moment fails verification.
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="active"), name="signingkey_one_active"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kid} ({self.status})"


class Checkpoint(models.Model):
    """A signed tree head: the Merkle root of the first ``tree_size`` events, signed with time."""

    tree_size = models.BigIntegerField(unique=True)
    root_hash = models.CharField(max_length=64)
    time = models.DateTimeField()
    key_id = models.CharField(max_length=32)
    signature = models.CharField(max_length=128)
    body = models.BinaryField(help_text="RFC 8785 canonical {size, root, time}: the signed bytes")

    class Meta:
        ordering = ["-tree_size"]
        triggers = [
            pgtrigger.Protect(
                name="checkpoint_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            ),
            no_truncate("checkpoint_no_truncate"),
        ]

    def __str__(self) -> str:
        return f"checkpoint size {self.tree_size}"


class VerificationRun(models.Model):
    """One run of full log verification (from the page, the API, a task or the CLI), with progress."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    total = models.BigIntegerField(default=0)
    checked = models.BigIntegerField(default=0)
    first_bad_seq = models.BigIntegerField(null=True, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"verification {self.status} {self.checked}/{self.total}"

    def get_absolute_url(self) -> str:
        return reverse("verification-detail", kwargs={"run_id": self.pk})

    @property
    def percent(self) -> int:
        return int(100 * self.checked / self.total) if self.total else 100
