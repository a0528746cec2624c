"""State changes that belong to no single app: the worker heartbeat."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from governance.models import WorkerHeartbeat


@transaction.atomic
def heartbeat_record(*, worker: str) -> WorkerHeartbeat:
    """Stamp the time a worker proved it is alive (operational state, not a governance event)."""
    now = timezone.now()
    beat, created = WorkerHeartbeat.objects.get_or_create(
        worker=worker[:200], defaults={"last_beat_at": now, "beats": 1}
    )
    if not created:
        WorkerHeartbeat.objects.filter(pk=beat.pk).update(last_beat_at=now, beats=F("beats") + 1)
        beat.refresh_from_db()
    return beat
