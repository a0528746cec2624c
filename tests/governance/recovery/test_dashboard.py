"""Recovery on the readiness dashboard, the home page and /metrics (platform administrators)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from registry import services as registry
from tests.factories import make_artifact, publish
from tests.governance.recovery.test_alerts import record

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def recovery_section(html: str) -> str:
    match = re.search(r'<section[^>]*id="recovery"[^>]*>(.*?)</section>', html, re.S)
    assert match is not None
    return match.group(1)


def rows(section: str) -> dict[str, tuple[str, str, str]]:
    """proof key -> (result, stale, the row's text without tags)."""
    found = re.findall(
        r'<tr data-proof="([^"]+)" data-result="(\w+)" data-stale="(\w+)">(.*?)</tr>', section, re.S
    )
    return {
        key: (result, stale, re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).strip())
        for key, result, stale, body in found
    }


def test_the_readiness_page_shows_each_proof_and_flags_the_stale(
    client: Client, root: Any, make_user: Any, acme: Any
) -> None:
    now = timezone.now()
    record(
        "backup",
        at=now - 3 * DAY,
        location="/srv/backups/backup-1",
        details={"bytes": 3 * 1024 * 1024, "log_size": 1200, "rows": 90, "seconds": 2.5},
    )
    record("backup", at=now - timedelta(hours=2), outcome="failed", error="No space left on device")
    registry.install_builtin_classes()
    card = make_artifact(acme, "scorecard", "restore-drill")
    archive = publish(card, data={"outcome": "passed"})
    record(
        "drill",
        at=now - 10 * DAY,
        details={"restore_seconds": 4.25, "verify_seconds": 1.5},
        version=archive,
    )
    record("rehearsal", subject="support/reply", at=now - DAY, details={"revert_seconds": 0.75})

    client.force_login(root)
    html = client.get("/governance/readiness/").content.decode()
    got = rows(recovery_section(html))
    assert list(got) == ["backup", "drill", "rehearsal:support/reply"]
    result, stale, text = got["backup"]
    assert (result, stale) == ("failed", "yes")
    assert "failed 2.0 h ago: No space left on device" in text
    assert "3.0 d ago overdue (limit 36.0 h)" in text
    assert got["drill"][:2] == ("passed", "no")
    assert "restore 4.25 s, verify 1.50 s" in got["drill"][2]
    assert f'<a href="{archive.get_absolute_url()}">{archive.path}</a>' in recovery_section(html)
    assert got["rehearsal:support/reply"][:2] == ("passed", "no")
    assert "time to revert 0.75 s" in got["rehearsal:support/reply"][2]

    # A tenant's administrator sees the page, not the platform's recovery section.
    client.force_login(make_user("acme-admin", acme=["member", "administrator"]))
    html = client.get("/governance/readiness/").content.decode()
    assert 'id="recovery"' not in html


def test_a_passed_backup_shows_its_size_and_log(client: Client, root: Any) -> None:
    record(
        "backup",
        at=timezone.now() - timedelta(hours=1),
        location="/srv/backups/backup-2",
        details={"bytes": 5 * 1024 * 1024, "log_size": 42},
    )
    client.force_login(root)
    got = rows(recovery_section(client.get("/governance/readiness/").content.decode()))
    result, stale, text = got["backup"]
    assert (result, stale) == ("passed", "no")
    assert "size 5.0 MB, log 42 events" in text
    assert got["drill"][:2] == ("none", "yes")
    assert "none yet" in got["drill"][2]


def test_the_recovery_query_count_does_not_grow_with_the_runs(
    client: Client, root: Any, django_assert_num_queries: Any
) -> None:
    now = timezone.now()

    def build(n: int) -> None:
        for i in range(n):
            record("backup", at=now - i * DAY)
            record("drill", at=now - i * DAY)
            record("rehearsal", subject=f"app/slot-{i}", at=now - i * DAY)

    client.force_login(root)
    build(2)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/governance/readiness/").status_code == 200
    build(6)  # three times the runs, four times the rehearsed slots
    with django_assert_num_queries(len(ctx.captured_queries)):
        html = client.get("/governance/readiness/").content.decode()
    assert len(rows(recovery_section(html))) == 2 + 6


def test_the_home_page_tells_a_platform_administrator_of_overdue_proof(
    client: Client, root: Any, make_user: Any, acme: Any
) -> None:
    now = timezone.now()
    record("backup", at=now - timedelta(hours=1))
    record("drill", at=now - 120 * DAY)
    client.force_login(root)
    html = client.get("/").content.decode()
    match = re.search(r'<section[^>]*id="recovery"[^>]*>(.*?)</section>', html, re.S)
    assert match is not None
    assert "Recovery proof overdue" in match.group(1)
    assert re.findall(r'data-proof="([^"]+)"', match.group(1)) == ["drill"]
    assert "/governance/readiness/#recovery" in match.group(1)

    record("drill", at=now)
    assert 'id="recovery"' not in client.get("/").content.decode()  # nothing overdue
    record("drill", at=now - 200 * DAY)  # an older one changes nothing
    assert 'id="recovery"' not in client.get("/").content.decode()
    client.force_login(make_user("acme-admin", acme=["member", "administrator"]))
    record("backup", at=now - 10 * DAY, outcome="failed")
    assert 'id="recovery"' not in client.get("/").content.decode()


def test_metrics_expose_ages_and_results(root: Any, token_client: Any) -> None:
    now = timezone.now()
    record("backup", at=now - timedelta(hours=3))
    record("backup", at=now - timedelta(hours=1), outcome="failed")
    record("rehearsal", subject="support/reply", at=now - 2 * DAY)
    record("rehearsal", subject="sales/lead", at=now - DAY, outcome="failed")
    text = token_client(root).get("/metrics").content.decode()

    def value(name: str) -> float:
        match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
        assert match is not None, name
        return float(match.group(1))

    assert 3 * 3600 - 60 < value("governance_backup_age_seconds") < 3 * 3600 + 60
    assert value("governance_backup_last_success") == 0.0
    # No drill ever: no series (alert on absent()), only the help lines.
    assert "# TYPE governance_drill_age_seconds gauge" in text
    assert not re.search(r"^governance_drill_(age_seconds|last_success) ", text, re.M)
    age = value('governance_rehearsal_age_seconds{slot="support/reply"}')
    assert 2 * 86400 - 60 < age < 2 * 86400 + 60
    assert value('governance_rehearsal_last_success{slot="support/reply"}') == 1.0
    assert value('governance_rehearsal_last_success{slot="sales/lead"}') == 0.0
    assert 'governance_rehearsal_age_seconds{slot="sales/lead"}' not in text


def test_the_home_page_query_count_does_not_grow_with_overdue_slots(
    client: Client, root: Any, django_assert_num_queries: Any
) -> None:
    old = timezone.now() - 200 * DAY

    def build(first: int, n: int) -> None:
        for i in range(first, first + n):
            record("rehearsal", subject=f"app/slot-{i}", at=old)

    client.force_login(root)
    build(0, 2)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/").status_code == 200
    build(2, 4)
    with django_assert_num_queries(len(ctx.captured_queries)):
        html = client.get("/").content.decode()
    match = re.search(r'<section[^>]*id="recovery"[^>]*>(.*?)</section>', html, re.S)
    assert match is not None
    proofs = re.findall(r'data-proof="([^"]+)"', match.group(1))
    assert proofs == ["backup", "drill", *(f"rehearsal:app/slot-{i}" for i in range(6))]
