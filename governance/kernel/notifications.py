"""Notifications (in the app, and by email through a worker with an outbox) and worker heartbeats.

Every floor notifies people through :func:`notification_send`; the email goes out from a
task after the commit, at least once, never from a request thread.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import BooleanField, ExpressionWrapper, F, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from governance.kernel.errors import NotFound
from governance.kernel.models import Notification, WorkerHeartbeat

logger = logging.getLogger(__name__)


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


@transaction.atomic
def notification_send(  # noqa: PLR0913 - keyword-only, called everywhere: the notification's fields
    *,
    users: Iterable[Any],
    title: str,
    body: str = "",
    url: str = "",
    tenant: Any | None = None,
    dedupe_key: str,
    subject: str = "",
) -> list[Notification]:
    """Notify each person once per ``dedupe_key``: in the app, and by email from a worker.

    Safe to call twice with the same key (a retried task): the second call creates nothing.
    The email is queued after the commit and never fails the caller: a notification whose
    email was not sent keeps ``emailed_at`` empty, and the outbox
    (:func:`notification_outbox_requeue`) queues it again.

    ``subject`` names the reason ("change:12:review"); a person has one open notification
    per subject. The same key again refreshes the open one's wording (no new row, no new
    email); a new key (a new revision) resolves the open one as replaced and creates one.
    :func:`notification_resolve` closes them when the reason goes away.
    """
    created = []
    now = timezone.now()
    title, url, dedupe_key = title[:200], url[:500], dedupe_key[:200]
    people = {u.pk: u for u in users if u is not None and u.is_active}
    open_ones: dict[Any, Notification] = {}
    if subject and people:
        open_ones = {
            n.user_id: n
            for n in Notification.objects.select_for_update().filter(
                user_id__in=list(people), subject=subject, resolved_at__isnull=True
            )
        }
    for user in people.values():
        current = open_ones.get(user.pk)
        if current is not None and current.dedupe_key == dedupe_key:
            if (current.title, current.body, current.url) != (title, body, url):
                Notification.objects.filter(pk=current.pk).update(title=title, body=body, url=url)
            continue  # already notified for this reason
        if current is not None:
            Notification.objects.filter(pk=current.pk).update(
                resolved_at=now,
                read_at=Coalesce(F("read_at"), Value(now)),
                resolution="Replaced by a newer notification.",
            )
        try:
            with transaction.atomic():
                note = Notification.objects.create(
                    user=user,
                    tenant=tenant,
                    title=title,
                    body=body,
                    url=url,
                    dedupe_key=dedupe_key,
                    subject=subject[:200],
                    email_queued_at=now if user.email else None,
                )
        except IntegrityError:
            continue  # already notified under this key
        created.append(note)
        if user.email:
            transaction.on_commit(partial(_queue_email, note.pk), robust=True)
    return created


@transaction.atomic
def notification_resolve(
    *,
    subject: str | Sequence[str],
    users: Iterable[Any] | None = None,
    reason: str = "",
    exclude_users: Iterable[Any] = (),
) -> int:
    """Close the open notifications about ``subject`` (one or several): their reason went away.

    Stamps ``resolved_at`` and ``resolution`` (why, shown on the notifications page) and
    marks them read, for everyone or for ``users`` only, except ``exclude_users``.
    Idempotent: resolved ones are left alone. Returns how many were resolved.
    """
    subjects = [subject] if isinstance(subject, str) else list(subject)
    qs = Notification.objects.filter(subject__in=subjects, resolved_at__isnull=True)
    if users is not None:
        qs = qs.filter(user__in=[u.pk if hasattr(u, "pk") else u for u in users])
    excluded = [u.pk if hasattr(u, "pk") else u for u in exclude_users]
    if excluded:
        qs = qs.exclude(user__in=excluded)
    now = timezone.now()
    return qs.update(
        resolved_at=now, read_at=Coalesce(F("read_at"), Value(now)), resolution=reason[:300]
    )


@transaction.atomic
def notification_open(*, user: Any, notification_id: int) -> Notification:
    """A person opens one of their notifications: it is marked read (someone else's: not found)."""
    note = Notification.objects.filter(pk=notification_id, user=user).first()
    if note is None:
        raise NotFound("No such notification.")
    if note.read_at is None:
        note.read_at = timezone.now()
        Notification.objects.filter(pk=note.pk, read_at__isnull=True).update(read_at=note.read_at)
    return note


def notifications_of(user: Any) -> QuerySet[Notification]:
    """A person's notifications: open and unread first, then open, then resolved; newest first."""
    return (
        Notification.objects.filter(user=user)
        .select_related("tenant")
        .alias(
            done=ExpressionWrapper(Q(resolved_at__isnull=False), output_field=BooleanField()),
            seen=ExpressionWrapper(Q(read_at__isnull=False), output_field=BooleanField()),
        )
        .order_by("done", "seen", "-created_at", "-pk")
    )


def unread_count(user: Any) -> int:
    """What the header counts: unread notifications whose reason still stands."""
    return Notification.objects.filter(
        user=user, read_at__isnull=True, resolved_at__isnull=True
    ).count()


def _queue_email(notification_id: int) -> None:
    """Hand one email to a worker. If the broker (or, eagerly, the mail server) fails, the
    request that committed the notification still succeeds: the outbox queues it again."""
    from governance.kernel.tasks import notification_email

    try:
        notification_email.delay(notification_id)
    except Exception:  # noqa: BLE001 - the caller's transaction has committed; never fail it
        logger.warning(
            "Email of notification %s not queued; the outbox will retry", notification_id
        )


def _message_id(note: Notification) -> str:
    """The same Message-ID for every attempt, so a receiving server or client can spot a resend."""
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2] or "localhost"
    return f"<notification.{note.pk}.{int(note.created_at.timestamp())}@{domain}>"


@transaction.atomic
def notification_email_send(*, notification_id: int) -> bool:
    """Email one notification, at most once: claim its row, send, stamp ``emailed_at``.

    The claim is a row lock taken with SKIP LOCKED (PostgreSQL) on a row not yet stamped,
    held while the mail server answers: a second worker with the same notification skips
    it, and one that comes after the commit finds it stamped. A send that raises rolls back
    (nothing stamped) and the caller retries. Returns whether an email went out.
    """
    note = (
        Notification.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("user")
        .filter(pk=notification_id, emailed_at__isnull=True)
        .first()
    )
    if note is None or not note.user.email or not note.user.is_active:
        return False  # sent already, being sent by another worker, or nobody to send to
    link = f"\n\n{settings.SITE_URL.rstrip('/')}{note.url}" if note.url else ""
    message = EmailMessage(
        subject=note.title,
        body=f"{note.body}{link}",
        to=[note.user.email],
        headers={"Message-ID": _message_id(note), "X-Governance-Notification": str(note.pk)},
    )
    message.send(fail_silently=False)
    Notification.objects.filter(pk=note.pk).update(emailed_at=timezone.now())
    return True


@transaction.atomic
def notification_outbox_requeue(*, limit: int = 1000) -> int:
    """Queue again every email never stamped whose last queueing is older than
    ``NOTIFICATION_EMAIL_RETRY_AFTER_SECONDS`` (a worker died, the broker or mail server was
    down). Rows are claimed with SKIP LOCKED and restamped ``email_queued_at``, so two
    outbox runs do not queue the same email twice. Real time, not a pinned sweep clock.
    Returns how many were queued.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.NOTIFICATION_EMAIL_RETRY_AFTER_SECONDS)
    ids = list(
        Notification.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(emailed_at__isnull=True, user__is_active=True)
        .exclude(user__email="")
        .filter(Q(email_queued_at__isnull=True) | Q(email_queued_at__lte=stale))
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    if ids:
        Notification.objects.filter(pk__in=ids).update(email_queued_at=now)
    for pk in ids:
        transaction.on_commit(partial(_queue_email, pk), robust=True)
    return len(ids)


@transaction.atomic
def notification_mark_read(*, user: Any, ids: Iterable[int] | None = None) -> int:
    """Mark a person's notifications read (all unread ones, or those named)."""
    qs = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
    return qs.update(read_at=timezone.now())
