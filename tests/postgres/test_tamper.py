"""A hostile database administrator on PostgreSQL: TRUNCATE must not erase what DELETE may not.

``TRUNCATE registry_version CASCADE`` used to pass the row triggers and empty every
table that points at a version (artifacts, changes, approvals, waivers...).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.db import DatabaseError, connection, transaction

from governance.events.services import checkpoint_create
from registry import services as registry
from reviews import services
from reviews.choices import CheckStatus
from reviews.models import CheckRun
from tests.reviews.conftest import PINS, make_artifact, people, publish

__all__ = ["people"]  # a fixture, imported for use here

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _row_counts() -> dict[str, int]:
    return {
        model._meta.db_table: model._base_manager.count()
        for model in apps.get_models()
        if model._meta.managed
    }


@pytest.fixture
def populated(acme: Any, people: dict[str, Any]) -> dict[str, int]:
    """Artifacts, versions with a dependency, a submitted change with checks, events and a checkpoint."""
    registry.install_builtin_classes()
    tone = make_artifact(acme, "prompt", "tone", owner=people["admin"])
    t1 = publish(tone, impact="major", text="Be kind.", metadata=PINS)
    reply = make_artifact(acme, "prompt", "reply", owner=people["admin"])
    r1, _ = registry.version_publish(
        artifact=reply,
        content=registry.Content(text="Reply to {{ customer }}."),
        impact="major",
        reason="first",
        actor=None,
        metadata=PINS,
        dependencies=[t1.pinned],
    )
    change = services.change_create(
        tenant=acme, actor=people["author"], title="Go", rollback_plan="Back", proposed=[r1]
    )
    services.evidence_attach(change=change, actor=None, version=r1, metrics={"safety": 0.9})
    services.change_submit(change=change, actor=people["author"])
    for run in CheckRun.objects.filter(change=change, status=CheckStatus.PENDING):
        services.check_execute(run=run)
    checkpoint_create()
    counts = _row_counts()
    for table in (
        "registry_version",
        "registry_versiondependency",
        "registry_artifact",
        "reviews_changerequest",
        "reviews_checkrun",
        "governance_event",
        "governance_checkpoint",
    ):
        assert counts[table] > 0, table
    return counts


@pytest.mark.parametrize(
    "sql",
    [
        "TRUNCATE registry_version CASCADE",
        "TRUNCATE registry_versiondependency",
        "TRUNCATE registry_versiondependency CASCADE",
        "TRUNCATE governance_checkpoint",
        "TRUNCATE governance_checkpoint CASCADE",
        "TRUNCATE governance_event CASCADE",
        # Tables that protected ones point at: the cascade reaches a protected table and fails.
        "TRUNCATE registry_artifact CASCADE",
        "TRUNCATE accounts_tenant CASCADE",
        "TRUNCATE reviews_changerequest, registry_version CASCADE",
    ],
)
def test_truncate_of_a_protected_table_fails_and_leaves_every_row(
    populated: dict[str, int], sql: str
) -> None:
    with pytest.raises(DatabaseError) as err, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert "pgtrigger: Cannot truncate the append-only table" in str(err.value)
    assert _row_counts() == populated


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("UPDATE governance_event SET actor_name = 'mallory' WHERE seq = %s", "actor columns"),
        ("UPDATE governance_event SET payload = '{\"x\": 1}' WHERE seq = %s", "payload column"),
        (
            "UPDATE governance_event SET payload_bytes = '\\xfffe'::bytea WHERE seq = %s",
            "payload does not match its signed digest",
        ),
    ],
)
def test_database_verifier_outside_a_transaction_reads_ahead_and_finds_tampering(
    acme: Any, sql: str, reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside a transaction the verifier reads pages in a second thread; what it finds is the same."""
    import pgtrigger

    from accounts import services as accounts
    from governance.events import services as events
    from governance.events.models import Event

    monkeypatch.setattr(events, "VERIFY_PAGE", 7)  # several pages, the bad row in the middle one
    for i in range(20):
        accounts.tenant_create(slug=f"t{i}", name=f"T{i}", actor=None)
    assert not connection.in_atomic_block
    clean = events.verify_database()
    assert clean.ok and clean.checked == Event.objects.count()
    target = 12
    with pgtrigger.ignore("governance.Event:event_append_only"), connection.cursor() as cursor:
        cursor.execute(sql, [target])
    result = events.verify_database()
    assert not result.ok
    assert result.first_bad_seq == target
    assert reason in result.reason


def test_registry_verify_fails_after_a_truncate_with_the_triggers_dropped(
    populated: dict[str, int],
) -> None:
    """Even past the triggers, the log still names every published version: the cut shows."""
    import io

    import pgtrigger
    from django.core.management import call_command

    from governance.events.services import verify_database
    from registry.models import Version

    with (
        pgtrigger.ignore(
            "registry.Version:version_no_truncate",
            "registry.VersionDependency:dependency_no_truncate",
        ),
        connection.cursor() as cursor,
    ):
        cursor.execute("TRUNCATE registry_version CASCADE")
    assert Version.objects.count() == 0
    assert verify_database().ok  # the log itself is intact...
    err = io.StringIO()
    with pytest.raises(SystemExit) as code:
        call_command("registry", "verify", stdout=io.StringIO(), stderr=err)
    assert code.value.code == 1  # ...and says what the registry lost
    assert "but no version row has that hash" in err.getvalue()
