"""The governance sweep on a real worker and beat over Redis: alerts and removals happen once.

Beat alone (nobody sends a task) alerts the people of a waiver that expires soon and reminds
the owners of an overdue post-mortem, once each however many times it ticks. With the clock
pinned ten days ahead, two sweeps in a row tell of the expiry once and remove a deprecated
version once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.models import Notification
from governance.tasks import sweep
from registry import services as registry
from reviews import services as reviews
from reviews.choices import CheckKind, CheckStatus
from reviews.models import ChangeRequest, CheckRun
from reviews.waivers import services as governance
from reviews.waivers.models import Waiver
from tests.integration.workers import redis_broker, start, start_worker, stop, wait_for
from tests.reviews.conftest import PINS, make_artifact, people, publish

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]
__all__ = ["people"]  # a fixture, imported for use here

# The worker prints each email it sends to its log, where the test counts them.
WORKER_ENV = {
    "GOVERNANCE_SWEEP_INTERVAL_SECONDS": "1",
    "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
}


@pytest.fixture
def broker() -> Iterator[str]:
    yield from redis_broker()


@pytest.fixture(autouse=True)
def _builtin_classes(db: None) -> None:
    registry.install_builtin_classes()


def expiring_waiver(acme: Any, people: dict[str, Any], slug: str = "refund-reply") -> Waiver:
    """A change-gates waiver on a prompt, owned by the author, that expires in five days."""
    prompt = make_artifact(acme, "prompt", slug, owner=people["author"])
    return governance.waiver_grant(
        tenant=acme,
        actor=people["admin"],
        check_kind=CheckKind.OFFLINE_EVALUATION,
        owner=people["author"],
        artifacts=[prompt],
        justification="The corpus is too small to judge accuracy.",
        mitigation="An agent reads every reply before it is sent.",
        expires_at=timezone.now() + timedelta(days=5),
    )


def emergency_promoted(acme: Any, people: dict[str, Any]) -> ChangeRequest:
    """An emergency change promoted now; its post-mortem is due in five days (the policy)."""
    prompt = make_artifact(acme, "prompt", "outage-notice", owner=people["admin"])
    version = publish(prompt, impact="major", text="Notice for {{ service }}.", metadata=PINS)
    change = reviews.change_create(
        tenant=acme,
        actor=people["author"],
        title="Emergency: outage notice",
        rollback_plan="Write notices by hand.",
        proposed=[version],
        emergency=True,
        external_egress=False,
    )
    reviews.evidence_attach(change=change, actor=None, version=version, metrics={"safety": 0.9})
    reviews.change_submit(change=change, actor=people["author"])
    for run in CheckRun.objects.filter(change=change, status=CheckStatus.PENDING):
        reviews.check_execute(run=run)
    for who in ("admin", "security"):  # the accountable owner and a security officer
        reviews.approval_decide(change=change, actor=people[who], decision="approve")
    return reviews.change_promote(change=change, actor=people["admin"])


def recipients(key: str) -> list[str]:
    return sorted(
        Notification.objects.filter(dedupe_key=key).values_list("user__username", flat=True)
    )


def log(tmp_path: Path, name: str = "worker") -> str:
    path = tmp_path / f"{name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def sweeps_done(tmp_path: Path) -> int:
    return len(re.findall(r"Task governance\.tasks\.sweep\[[^\]]+\] succeeded", log(tmp_path)))


def emails_to(tmp_path: Path, address: str, subject: str) -> int:
    """How many emails the worker sent to ``address`` with ``subject`` (console backend)."""
    # Unfold long headers (RFC 5322: a line break before whitespace continues the header).
    messages = re.sub(r"\r?\n(?=[ \t])", "", log(tmp_path)).split("-" * 79)
    return sum(
        1
        for m in messages
        if re.search(rf"^To: {re.escape(address)}$", m, re.M)
        and re.search(rf"^Subject: {re.escape(subject)}$", m, re.M)
    )


@pytest.mark.usefixtures("broker")
def test_beat_alone_alerts_each_person_once_however_often_it_ticks(
    tmp_path: Path, acme: Any, people: dict[str, Any]
) -> None:
    waiver = expiring_waiver(acme, people)
    with time_machine.travel(timezone.now() - timedelta(days=10), tick=True):
        emergency = emergency_promoted(acme, people)  # its post-mortem was due 5 days ago
    assert emergency.postmortem_due_at is not None
    assert emergency.postmortem_due_at < timezone.now()
    expiring, overdue = f"waiver:{waiver.pk}:expiring", f"postmortem:{emergency.pk}:overdue"
    # Tenant administrators and the owner; "multi" holds administrator too.
    alerted = ["admin", "author", "multi"]

    worker = start_worker(tmp_path, **WORKER_ENV)
    beat = start(
        ["beat", "-l", "INFO", "-s", str(tmp_path / "beat-schedule")],
        tmp_path,
        "beat",
        **WORKER_ENV,
    )
    try:
        assert wait_for(lambda: recipients(expiring) == alerted), log(tmp_path)
        assert wait_for(lambda: recipients(overdue) == ["admin", "author"]), log(tmp_path)
        ticks = sweeps_done(tmp_path)
        # Let beat run the sweep at least three more times.
        assert wait_for(lambda: sweeps_done(tmp_path) >= ticks + 3), log(tmp_path, "beat")
    finally:
        stop(beat)
        stop(worker)

    assert recipients(expiring) == alerted
    assert recipients(overdue) == ["admin", "author"]
    assert Notification.objects.filter(dedupe_key=expiring, emailed_at__isnull=True).count() == 0
    title = Notification.objects.filter(dedupe_key=expiring).first().title
    assert title.startswith(f"Renew {waiver.reference} or let it lapse: it expires on ")
    for name in alerted:
        assert emails_to(tmp_path, f"{name}@example.com", title) == 1, name
    reminder = Notification.objects.filter(dedupe_key=overdue).first().title
    for name in ("admin", "author"):
        assert emails_to(tmp_path, f"{name}@example.com", reminder) == 1, name
    # At the real time the waiver has not expired yet: no other alert about it.
    assert not Notification.objects.filter(dedupe_key__startswith="waiver:").exclude(
        dedupe_key=expiring
    )


@pytest.mark.usefixtures("broker")
def test_two_sweeps_at_a_controlled_clock_expire_and_remove_once(
    tmp_path: Path, acme: Any, people: dict[str, Any]
) -> None:
    waiver = expiring_waiver(acme, people)
    prompt = make_artifact(acme, "prompt", "support-reply", owner=people["author"])
    old = publish(prompt, impact="major", text="Answer {{ customer }}.")
    new = publish(prompt, text="Answer {{ customer }} and thank them.")
    deprecation = registry.version_deprecate(
        version=old,
        replacement=new,
        reason="The new one thanks the customer.",
        remove_after_days=7,
        actor=people["admin"],
    )
    later = (timezone.now() + timedelta(days=10)).isoformat()

    worker = start_worker(tmp_path, **WORKER_ENV)
    try:
        sent = [sweep.delay(now=later).id, sweep.delay(now=later).id]
        assert wait_for(
            lambda: all(f"sweep[{task_id}] succeeded" in log(tmp_path) for task_id in sent)
        ), log(tmp_path)
        # Emails go out from their own tasks, after the sweep that created the alerts.
        unsent = Notification.objects.filter(emailed_at__isnull=True)
        assert wait_for(lambda: not unsent.exists()), log(tmp_path)
    finally:
        stop(worker)

    expired = f"waiver:{waiver.pk}:expired"
    assert recipients(expired) == ["admin", "author", "multi"]
    title = Notification.objects.filter(dedupe_key=expired).first().title
    assert title == (
        f"Renew {waiver.reference} or fix Offline evaluation: "
        "the waiver has expired and the check blocks again"
    )
    for name in ("admin", "author", "multi"):
        assert emails_to(tmp_path, f"{name}@example.com", title) == 1, name

    deprecation.refresh_from_db()
    assert deprecation.removed_at is not None
    assert deprecation.removed_at.isoformat() == later  # the pinned clock, not the worker's
    removed = Event.objects.filter(kind=EventKind.VERSION_REMOVED, subject_id=str(old.pk))
    assert removed.count() == 1
    assert removed.get().via == "task:sweep"
    # The first sweep did the work; the second found nothing left to do.
    returns = re.findall(r"sweep\[[^\]]+\] succeeded in [^:]+: (\{.*\})", log(tmp_path))
    assert (
        sorted(returns)
        == sorted(
            [
                "{'waiver_alerts': 3, 'removed_versions': 1, 'removals_held': 0,"
                " 'postmortem_reminders': 0, 'recertification_reminders': 0,"
                " 'rollout_flag_alerts': 0, 'telemetry_rows_folded': 0, 'recovery_alerts': 2}",  # no backup, no drill yet: announced once each
                "{'waiver_alerts': 0, 'removed_versions': 0, 'removals_held': 0,"
                " 'postmortem_reminders': 0, 'recertification_reminders': 0,"
                " 'rollout_flag_alerts': 0, 'telemetry_rows_folded': 0, 'recovery_alerts': 0}",
            ]
        )
    )


@pytest.mark.usefixtures("broker")
def test_a_sweep_queued_twice_while_beat_runs_does_not_double_the_expiry_alert(
    tmp_path: Path, acme: Any, people: dict[str, Any]
) -> None:
    """Beat at the real time and sweeps pinned ahead share the worker; each key is sent once."""
    waiver = expiring_waiver(acme, people)
    later = (timezone.now() + timedelta(days=10)).isoformat()
    worker = start_worker(tmp_path, **WORKER_ENV)
    beat = start(
        ["beat", "-l", "INFO", "-s", str(tmp_path / "beat-schedule")],
        tmp_path,
        "beat",
        **WORKER_ENV,
    )
    try:
        assert wait_for(lambda: len(recipients(f"waiver:{waiver.pk}:expiring")) == 3), log(tmp_path)
        for _ in range(2):
            sweep.delay(now=later)
        assert wait_for(lambda: len(recipients(f"waiver:{waiver.pk}:expired")) == 3), log(tmp_path)
        ticks = sweeps_done(tmp_path)
        assert wait_for(lambda: sweeps_done(tmp_path) >= ticks + 2), log(tmp_path, "beat")
    finally:
        stop(beat)
        stop(worker)
    counts = {
        kind: Notification.objects.filter(dedupe_key=f"waiver:{waiver.pk}:{kind}").count()
        for kind in ("expiring", "expired")
    }
    assert counts == {"expiring": 3, "expired": 3}
