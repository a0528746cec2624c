"""Staleness alerts of recovery proof in the sweep: once per episode, resolved by a fresh run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts import services as accounts
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.models import Notification
from governance.recovery.alerts import recovery_alerts_send
from governance.recovery.models import RecoveryRun
from governance.recovery.selectors import recovery_status
from governance.recovery.services import recovery_run_record
from governance.sweep import governance_sweep

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def record(kind: str, *, at: Any, outcome: str = "passed", subject: str = "", **kw: Any) -> Any:
    return recovery_run_record(
        kind=kind,
        outcome=outcome,
        subject=subject,
        started_at=at - timedelta(seconds=30),
        finished_at=at,
        **kw,
    )


def stale_events() -> list[dict[str, Any]]:
    return [e.payload for e in Event.objects.filter(kind=EventKind.RECOVERY_STALE).order_by("seq")]


def open_notes(subject: str) -> list[str]:
    return sorted(
        Notification.objects.filter(subject=subject, resolved_at__isnull=True).values_list(
            "user__username", flat=True
        )
    )


def test_a_stale_drill_alerts_once(root: Any, make_user: Any, acme: Any) -> None:
    now = timezone.now()
    record("backup", at=now - timedelta(hours=2), location="/b/backup-1")
    drill = record("drill", at=now - 100 * DAY)
    tenant_admin = make_user("acme-admin", acme=["member", "administrator"])
    superuser = make_user("super")
    accounts.user_set_superuser(user=superuser, is_superuser=True, actor=None, reason="test")

    assert governance_sweep(now=now)["recovery_alerts"] == 1
    # The platform administrators (a platform-wide grant, a superuser), not a tenant's.
    assert open_notes("recovery:stale:drill") == ["root", "super"]
    assert not Notification.objects.filter(user=tenant_admin).exists()
    note = Notification.objects.get(user=root, subject="recovery:stale:drill")
    assert (
        note.title
        == "Recovery proof overdue: the last recovery drill is 100.0 d old (limit 90.0 d)"
    )
    assert note.url == "/governance/readiness/#recovery"
    [event] = stale_events()
    assert event["episode"] == f"drill:{drill.pk}"
    assert event["kind"] == "drill"
    assert event["age_seconds"] == 100 * 86400
    assert event["limit_seconds"] == 90 * 86400
    assert Event.objects.get(kind=EventKind.RECOVERY_STALE).subject_id == str(drill.pk)

    # Again, and later in the same episode: nothing new.
    assert governance_sweep(now=now)["recovery_alerts"] == 0
    assert governance_sweep(now=now + DAY / 2)["recovery_alerts"] == 0
    assert Notification.objects.filter(subject="recovery:stale:drill").count() == 2
    assert len(stale_events()) == 1

    # A fresh drill ends the episode: the alert is resolved, no event is added.
    fresh = record("drill", at=now + DAY)
    assert governance_sweep(now=now + DAY)["recovery_alerts"] == 0
    assert open_notes("recovery:stale:drill") == []
    assert Notification.objects.get(user=root, subject="recovery:stale:drill").resolution == (
        "A newer run passed."
    )
    assert len(stale_events()) == 1

    # 91 days on, it is stale again: a new episode, alerted once more (the backup too by then).
    later = now + 92 * DAY
    assert governance_sweep(now=later)["recovery_alerts"] == 2
    assert governance_sweep(now=later)["recovery_alerts"] == 0
    assert [e["episode"] for e in stale_events()][1:] == [
        f"backup:{RecoveryRun.objects.get(kind='backup').pk}",
        f"drill:{fresh.pk}",
    ]
    assert open_notes("recovery:stale:drill") == ["root", "super"]


def test_nothing_ever_run_is_stale_and_a_failed_run_does_not_count(root: Any) -> None:
    now = timezone.now()
    record("backup", at=now - timedelta(hours=1), outcome="failed", error="disk full")
    assert recovery_alerts_send(now=now) == 2  # no backup has passed, no drill ever ran
    titles = dict(Notification.objects.filter(user=root).values_list("subject", "title"))
    assert titles == {
        "recovery:stale:backup": "Recovery proof overdue: no backup has ever passed",
        "recovery:stale:drill": "Recovery proof overdue: no recovery drill has ever passed",
    }
    body = Notification.objects.get(subject="recovery:stale:backup").body
    assert "The newest attempt failed: disk full." in body
    assert sorted(e["episode"] for e in stale_events()) == ["backup:never", "drill:never"]
    assert recovery_alerts_send(now=now) == 0


def test_each_rehearsed_slot_is_judged_on_its_own(root: Any) -> None:
    now = timezone.now()
    record("backup", at=now, location="/b/1")
    record("drill", at=now)
    old = record("rehearsal", subject="support/reply", at=now - 95 * DAY)
    record(
        "rehearsal", subject="support/reply", at=now - DAY, outcome="failed", error="no way back"
    )
    record("rehearsal", subject="sales/lead", at=now - 10 * DAY)

    status = recovery_status(now)
    assert [(p.subject, p.stale, p.failing) for p in status.rehearsals] == [
        ("sales/lead", False, False),
        ("support/reply", True, True),
    ]
    assert recovery_alerts_send(now=now) == 1
    assert open_notes("recovery:stale:rehearsal:support/reply") == ["root"]
    assert open_notes("recovery:stale:rehearsal:sales/lead") == []
    [event] = stale_events()
    assert event["episode"] == f"rehearsal:{old.pk}"
    assert event["subject"] == "support/reply"
    assert recovery_alerts_send(now=now) == 0


def test_no_administrator_still_logs_the_episode_once() -> None:
    now = timezone.now()
    assert recovery_alerts_send(now=now) == 2
    assert recovery_alerts_send(now=now) == 0
    assert not Notification.objects.exists()
    assert len(stale_events()) == 2
