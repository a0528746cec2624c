"""Cross-cutting governance models. For now: the worker heartbeat behind /readyz."""

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
