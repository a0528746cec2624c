"""Telling the platform's administrators when recovery proof fails or grows stale.

Backups, drills and rehearsals prove the whole platform can come back, so the people told are
the platform administrators (``accounts.selectors.platform_administrators``: superusers and
holders of a platform-wide administrator grant); a tenant administrator cannot act on them.

- A failed scheduled backup: one notification per person and failure episode (subject
  ``recovery:backup-failed``; repeated failures refresh its wording, no new email), resolved
  when a backup passes.
- Staleness (the sweep): once per episode (``Proof.episode``: it changes only when a newer
  run passes) a notification (subject ``recovery:stale:<kind>[:<slot>]``) and one
  ``recovery.stale`` event; a fresh run resolves the notification.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.selectors import platform_administrators
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.events.services import event_record
from governance.kernel.notifications import notification_resolve, notification_send
from governance.recovery.models import RecoveryRun
from governance.recovery.selectors import Proof, latest_run, recovery_status

BACKUP_FAILED_SUBJECT = "recovery:backup-failed"
#: PostgreSQL advisory lock that serialises two sweeps deciding the same episode ("gov-recv").
ALERT_LOCK_ID = 0x676F762D72656376


def stale_subject(proof: Proof) -> str:
    """The notification subject of one proof's staleness (one open notification per person)."""
    what = f"{proof.kind}:{proof.subject}" if proof.subject else proof.kind
    return f"recovery:stale:{what}"[:200]


def age_text(age: timedelta | None) -> str:
    """An age in words: "never", "5.0 h" under two days, else "3.2 d"."""
    if age is None:
        return "never"
    hours = age.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} d"


def _readiness_url() -> str:
    return reverse("readiness") + "#recovery"


@transaction.atomic
def backup_failure_alert(*, run: RecoveryRun, now: datetime | None = None) -> int:
    """Tell the platform administrators a backup failed; returns notifications created.

    Once per failure episode (since the last passed backup): a later failure refreshes the
    open notification's wording (how many in a row, the newest reason) without a new email.
    """
    now = now or timezone.now()
    good = latest_run(RecoveryRun.Kind.BACKUP, passed=True)
    failures = RecoveryRun.objects.filter(
        kind=RecoveryRun.Kind.BACKUP, outcome=RecoveryRun.Outcome.FAILED
    )
    if good is not None:
        failures = failures.filter(finished_at__gt=good.finished_at)
    in_a_row = max(1, failures.count())
    since = (
        f"The last good backup finished {age_text(now - good.finished_at)} ago "
        f"({good.finished_at:%Y-%m-%d %H:%M} UTC, {good.location})."
        if good is not None
        else "No backup has ever passed."
    )
    title = "Fix the backups: the scheduled backup failed" + (
        f" ({in_a_row} times in a row)" if in_a_row > 1 else ""
    )
    body = (
        f"The backup at {run.finished_at:%Y-%m-%d %H:%M} UTC into "
        f"{run.location or settings.BACKUP_DIR} failed: {run.error or 'no reason given'}. "
        f"{since} Fix the cause and run `manage.py backup create --out {settings.BACKUP_DIR}`."
    )
    episode = good.pk if good is not None else "never"
    return len(
        notification_send(
            users=platform_administrators(),
            title=title,
            body=body,
            url=_readiness_url(),
            dedupe_key=f"{BACKUP_FAILED_SUBJECT}:{episode}",
            subject=BACKUP_FAILED_SUBJECT,
        )
    )


def backup_failure_resolve() -> int:
    """A backup passed: close the open failure notifications. Returns how many."""
    return notification_resolve(subject=BACKUP_FAILED_SUBJECT, reason="A later backup passed.")


def _announced(episodes: list[str]) -> set[str]:
    """Which of these staleness episodes already have their ``recovery.stale`` event."""
    if not episodes:
        return set()
    found = Event.objects.filter(
        kind=EventKind.RECOVERY_STALE, payload__episode__in=episodes
    ).values_list("payload__episode", flat=True)
    return {str(e) for e in found}


def _stale_wording(proof: Proof) -> tuple[str, str]:
    limit = age_text(proof.limit)
    if proof.last_passed is None:
        title = f"Recovery proof overdue: no {proof.label.lower()} has ever passed"
        body = f"The readiness rules ask for one at least every {limit}."
    else:
        title = (
            f"Recovery proof overdue: the last {proof.label.lower()} is "
            f"{age_text(proof.age)} old (limit {limit})"
        )
        body = (
            f"The newest passed one finished at {proof.last_passed.finished_at:%Y-%m-%d %H:%M} UTC."
        )
    if proof.failing and proof.last is not None:
        body += f" The newest attempt failed: {proof.last.error or 'no reason given'}."
    return title, body


def _lock_alerts() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ALERT_LOCK_ID])


def _announce(proof: Proof) -> int:
    """One episode's notification and event, unless a concurrent sweep announced it first."""
    with transaction.atomic():
        _lock_alerts()
        if _announced([proof.episode]):
            return 0
        title, body = _stale_wording(proof)
        notification_send(
            users=platform_administrators(),
            title=title,
            body=body,
            url=_readiness_url(),
            dedupe_key=f"{stale_subject(proof)}:{proof.episode}"[:200],
            subject=stale_subject(proof),
        )
        run = proof.last_passed
        event_record(
            kind=EventKind.RECOVERY_STALE,
            actor=None,
            subject=(
                ("governance.recoveryrun", str(run.pk), str(run))
                if run is not None
                else ("recovery.proof", proof.episode, proof.label)
            ),
            payload={
                "episode": proof.episode,
                "kind": proof.kind,
                "subject": proof.subject,
                "last_passed_at": run.finished_at.isoformat() if run is not None else None,
                "age_seconds": round(proof.age.total_seconds()) if proof.age else None,
                "limit_seconds": round(proof.limit.total_seconds()),
            },
        )
    return 1


def recovery_alerts_send(*, now: datetime | None = None) -> int:
    """The sweep's recovery check: alert once per staleness episode of the backups (older than
    BACKUP_STALE_HOURS, or none), the drills (DRILL_STALE_DAYS) and each slot's rehearsals
    (REHEARSAL_STALE_DAYS), and resolve the alerts of proofs that are fresh again.

    Idempotent: an announced episode is not announced again. Returns episodes announced.
    """
    status = recovery_status(now)
    stale = status.stale
    fresh = [stale_subject(p) for p in status.proofs if not p.stale]
    if fresh:
        notification_resolve(subject=fresh, reason="A newer run passed.")
    announced = _announced([p.episode for p in stale])
    return sum(_announce(p) for p in stale if p.episode not in announced)
