"""Cross-cutting governance models: the worker heartbeat and (from governance.events) the event log."""

from __future__ import annotations

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
    "SigningKey",
    "VerificationRun",
    "WorkerHeartbeat",
]
