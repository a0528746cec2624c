"""One row per backup, recovery drill or rollback rehearsal, passed or failed."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class RecoveryRun(models.Model):
    """An attempt to prove recoverability: a backup taken, a drill run, a rollback rehearsed.

    Written only by ``governance.recovery.services.recovery_run_record`` (with its event).
    """

    class Kind(models.TextChoices):
        BACKUP = "backup", "Backup"
        DRILL = "drill", "Recovery drill"
        REHEARSAL = "rehearsal", "Rollback rehearsal"

    class Outcome(models.TextChoices):
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=16, choices=Kind.choices, db_index=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    #: What it was about: a rehearsal's slot ("app/slot"), "" for backups and drills.
    subject = models.CharField(max_length=200, blank=True, default="")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(default=timezone.now, db_index=True)
    #: Where the backup is (a path), or which backup a drill restored.
    location = models.CharField(max_length=500, blank=True, default="")
    #: Measurements and facts: sizes, rows, log size and root, restore/verify/revert seconds.
    details = models.JSONField(default=dict, blank=True)
    #: Why it failed ("" when it passed).
    error = models.TextField(blank=True, default="")
    #: The signed registry version that archives a drill's or rehearsal's outcome.
    version = models.ForeignKey(
        "registry.Version", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-finished_at", "-id"]
        indexes = [models.Index(fields=["kind", "subject", "-finished_at"], name="recovery_latest")]

    def __str__(self) -> str:
        what = f" {self.subject}" if self.subject else ""
        return (
            f"{self.get_kind_display()}{what} {self.outcome} at {self.finished_at:%Y-%m-%d %H:%M}"
        )

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()
