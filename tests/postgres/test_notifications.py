"""The email claim on PostgreSQL: workers racing for one notification send it once.

Eight processes at once try to email each of five notifications through a mail server
that is slow to accept (so the claims really overlap); each notification is sent once
and stamped; the others skipped its locked row or found it stamped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from governance.kernel import notifications as governance
from governance.kernel.models import Notification
from tests.integration.mailbox import delivered
from tests.postgres.test_reviews import in_processes

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_parallel_workers_email_each_notification_once(
    make_user: Any, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert connection.vendor == "postgresql"
    settings.EMAIL_BACKEND = "tests.integration.mailbox.SlowFileBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    monkeypatch.setenv("TEST_MAIL_DELAY", "0.2")
    users = [make_user(f"user{i}") for i in range(5)]
    notes = [
        governance.notification_send(users=[u], title=f"Alert {i}", dedupe_key=f"k{i}")[0]
        for i, u in enumerate(users)
    ]
    ids = [n.pk for n in notes]

    def work() -> str:
        return ",".join(str(governance.notification_email_send(notification_id=pk)) for pk in ids)

    results = in_processes(8, work)
    assert all(r.startswith("ok:") for r in results), results
    sent_per_note = [sum(r[3:].split(",")[i] == "True" for r in results) for i in range(5)]
    assert sent_per_note == [1] * 5
    counts = delivered(tmp_path / "mail")
    assert counts == {(f"user{i}@example.com", f"Alert {i}"): 1 for i in range(5)}
    assert not Notification.objects.filter(pk__in=ids, emailed_at__isnull=True).exists()
