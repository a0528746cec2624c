"""Every alert is emailed exactly once, even when the worker is killed in the middle of the sweep.

A real worker and beat over Redis, a mail server the test reads from its files
(``tests.integration.mailbox``) that is slow to accept each message, and ``kill -9`` of the
worker while the sweep is creating the alerts. A new worker, the next sweeps and the email
outbox finish the job: each notification is stamped sent, and each person received each
alert once.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from governance.kernel.models import Notification
from registry import services as registry
from reviews.choices import CheckKind
from reviews.waivers import services as governance
from tests.integration.mailbox import delivered
from tests.integration.workers import redis_broker, start, start_worker, stop, wait_for
from tests.reviews.conftest import make_artifact, people

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]
__all__ = ["people"]  # a fixture, imported for use here

WAIVERS = 60
ALERTED = ["admin", "author", "multi"]  # the owner and the tenant's administrators


@pytest.fixture
def broker() -> Iterator[str]:
    yield from redis_broker()


def worker_env(mail: Path) -> dict[str, str]:
    return {
        "GOVERNANCE_SWEEP_INTERVAL_SECONDS": "1",
        "NOTIFICATION_OUTBOX_INTERVAL_SECONDS": "1",
        "NOTIFICATION_EMAIL_RETRY_AFTER_SECONDS": "5",
        "EMAIL_BACKEND": "tests.integration.mailbox.SlowFileBackend",
        "EMAIL_FILE_PATH": str(mail),
        "TEST_MAIL_DELAY": "0.01",
    }


def expiring_waivers(acme: Any, people: dict[str, Any], count: int) -> list[Any]:
    prompt = make_artifact(acme, "prompt", "refund-reply", owner=people["author"])
    return [
        governance.waiver_grant(
            tenant=acme,
            actor=people["admin"],
            check_kind=CheckKind.OFFLINE_EVALUATION,
            owner=people["author"],
            artifacts=[prompt],
            justification=f"Waiver {i}: the corpus is too small to judge accuracy.",
            mitigation="An agent reads every reply before it is sent.",
            expires_at=timezone.now() + timedelta(days=5),
        )
        for i in range(count)
    ]


@pytest.mark.usefixtures("broker")
def test_a_worker_killed_mid_sweep_leaves_no_alert_unsent_and_none_sent_twice(
    tmp_path: Path, acme: Any, people: dict[str, Any]
) -> None:
    registry.install_builtin_classes()
    waivers = expiring_waivers(acme, people, WAIVERS)
    Notification.objects.all().delete()  # countersignature requests and such: not this test's
    total = WAIVERS * len(ALERTED)
    mail = tmp_path / "mail"
    env = worker_env(mail)
    alerts = Notification.objects.filter(dedupe_key__endswith=":expiring")

    first = start_worker(tmp_path, "first", **env)
    beat = start(
        ["beat", "-l", "INFO", "-s", str(tmp_path / "beat-schedule")], tmp_path, "beat", **env
    )
    try:
        deadline = time.monotonic() + 60
        created = 0
        while time.monotonic() < deadline:
            created = alerts.count()
            if created > 0:
                break
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)  # kill -9: no chance to finish anything
        first.wait()
        killed_at = alerts.count()
        assert 0 < created <= killed_at < total, (created, killed_at)  # it died mid-sweep

        second = start_worker(tmp_path, "second", **env)
        try:
            assert wait_for(lambda: alerts.count() == total, timeout=90)
            assert wait_for(lambda: not alerts.filter(emailed_at__isnull=True).exists(), 120), (
                alerts.filter(emailed_at__isnull=True).count()
            )
            time.sleep(8)  # past the outbox's retry period: nothing more may be sent
        finally:
            stop(second)
    finally:
        stop(beat)

    counts = delivered(mail)
    expected = {
        (f"{name}@example.com", note.title)
        for note in alerts.select_related("user")
        for name in [note.user.username]
    }
    assert len(expected) == total
    assert {key: counts[key] for key in expected} == dict.fromkeys(expected, 1)
    assert sum(counts.values()) == total  # and nothing else was sent
    assert {w.reference for w in waivers} == {
        t.split(" ")[1]
        for t in alerts.values_list("title", flat=True)  # "Renew WV-… or …"
    }
