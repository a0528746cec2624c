"""State changes that belong to no single app: the worker heartbeat, notifications."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from governance.models import Notification, WorkerHeartbeat


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


def notification_send(
    *,
    users: Iterable[Any],
    title: str,
    body: str = "",
    url: str = "",
    tenant: Any | None = None,
    dedupe_key: str,
) -> list[Notification]:
    """Notify each person once per ``dedupe_key``: in the app, and by email after the commit.

    Safe to call twice with the same key (a retried task): the second call creates nothing.
    """
    created = []
    for user in {u.pk: u for u in users if u is not None and u.is_active}.values():
        try:
            with transaction.atomic():
                note = Notification.objects.create(
                    user=user,
                    tenant=tenant,
                    title=title[:200],
                    body=body,
                    url=url[:500],
                    dedupe_key=dedupe_key[:200],
                )
        except IntegrityError:
            continue  # already notified under this key
        created.append(note)
        if user.email:
            transaction.on_commit(partial(_email, note, user.email))
    return created


def _email(note: Notification, to: str) -> None:
    link = f"\n\n{settings.SITE_URL.rstrip('/')}{note.url}" if note.url else ""
    send_mail(note.title, f"{note.body}{link}", None, [to], fail_silently=True)
    Notification.objects.filter(pk=note.pk).update(emailed_at=timezone.now())


@transaction.atomic
def notification_mark_read(*, user: Any, ids: Iterable[int] | None = None) -> int:
    """Mark a person's notifications read (all unread ones, or those named)."""
    qs = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
    return qs.update(read_at=timezone.now())
