"""A hostile database administrator on PostgreSQL: TRUNCATE must not erase what DELETE may not.

``TRUNCATE registry_version CASCADE`` used to pass the row triggers and empty every
table that points at a version (artifacts, changes, approvals, waivers...).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from governance.kernel.events.services import checkpoint_create
from registry import services as registry
from registry.models import Retirement
from reviews import services
from reviews.choices import ActivationKind, CheckKind, CheckStatus
from reviews.models import Activation, CheckRun
from reviews.waivers import services as governance
from tests.conftest import append_only_triggers
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
    """Artifacts, versions with a dependency, an approval policy, a submitted and approved change
    with checks and evidence, an activation, a retirement, a waiver, events and a checkpoint."""
    registry.install_builtin_classes()
    services.approval_policy_update(
        tenant=acme,
        rules={"rules": [{"name": "any", "when": {}, "require": ["reviewer"]}]},
        reason="one reviewer",
        actor=people["admin"],
    )
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
    services.approval_decide(change=change, actor=people["reviewer"], decision="approve")
    # Written directly: only their rows matter here, not the services that write them.
    Activation.objects.create(artifact=tone, version=t1, kind=ActivationKind.PROMOTION, reason="go")
    Retirement.objects.create(
        version=t1, rationale="superseded", retain_until=timezone.now() + timedelta(days=30)
    )
    governance.waiver_grant(
        tenant=acme,
        actor=people["admin"],
        check_kind=CheckKind.OFFLINE_EVALUATION,
        owner=people["author"],
        artifacts=[reply],
        justification="The corpus is too small to judge accuracy.",
        mitigation="An agent reads every reply before it is sent.",
        expires_at=timezone.now() + timedelta(days=5),
    )
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
        *APPEND_ONLY_TABLES,
        *UNDELETABLE_TABLES,
    ):
        assert counts[table] > 0, table
    return counts


#: Written once, never changed nor removed: UPDATE, DELETE and TRUNCATE refused.
APPEND_ONLY_TABLES = {
    "reviews_approvalpolicy": "reason",
    "reviews_evaluationreport": "notes",
    "reviews_activation": "reason",
    "registry_retirement": "rationale",
}
#: Stamped later (voided, finished, countersigned, revoked), never removed: DELETE and TRUNCATE refused.
UNDELETABLE_TABLES = ("reviews_approval", "reviews_checkrun", "governance_waiver")


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
        "TRUNCATE reviews_approvalpolicy CASCADE",
        "TRUNCATE reviews_approval",
        "TRUNCATE reviews_checkrun",
        "TRUNCATE reviews_evaluationreport",
        "TRUNCATE reviews_activation",
        "TRUNCATE registry_retirement",
        "TRUNCATE governance_waiver CASCADE",
        "TRUNCATE reviews_changerequest CASCADE",
    ],
)
def test_truncate_of_a_protected_table_fails_and_leaves_every_row(
    populated: dict[str, int], sql: str
) -> None:
    with pytest.raises(DatabaseError) as err, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert "pgtrigger: Cannot truncate the append-only table" in str(err.value)
    assert _row_counts() == populated


@pytest.mark.usefixtures("acme")
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
    sql: str, reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside a transaction the verifier reads pages in a second thread; what it finds is the same."""
    import pgtrigger

    from accounts import services as accounts
    from governance.kernel.events.models import Event
    from governance.kernel.events.services import verification as events

    monkeypatch.setattr(events, "VERIFY_PAGE", 7)  # several pages, the bad row in the middle one
    for i in range(20):
        accounts.tenant_create(slug=f"t{i}", name=f"T{i}", actor=None)
    assert not connection.in_atomic_block
    clean = events.verify_database()
    assert clean.ok
    assert clean.checked == Event.objects.count()
    target = 12
    with pgtrigger.ignore("governance.Event:event_append_only"), connection.cursor() as cursor:
        cursor.execute(sql, [target])
    result = events.verify_database()
    assert not result.ok
    assert result.first_bad_seq == target
    assert reason in result.reason


@pytest.mark.usefixtures("populated")
def test_registry_verify_fails_after_a_truncate_with_the_triggers_dropped() -> None:
    """Even past the triggers, the log still names every published version: the cut shows."""
    import io

    import pgtrigger
    from django.core.management import call_command

    from governance.kernel.events.services import verify_database
    from registry.models import Version

    every_truncate_trigger = [t for t in append_only_triggers() if t.endswith("_no_truncate")]
    with pgtrigger.ignore(*every_truncate_trigger), connection.cursor() as cursor:
        cursor.execute("TRUNCATE registry_version CASCADE")
    assert Version.objects.count() == 0
    assert verify_database().ok  # the log itself is intact...
    err = io.StringIO()
    with pytest.raises(SystemExit) as code:
        call_command("registry", "verify", stdout=io.StringIO(), stderr=err)
    assert code.value.code == 1  # ...and says what the registry lost
    assert "but no version row has that hash" in err.getvalue()


@pytest.mark.parametrize("table", [*APPEND_ONLY_TABLES, *UNDELETABLE_TABLES])
def test_each_protected_table_refuses_truncate_by_its_own_trigger(
    populated: dict[str, int], table: str
) -> None:
    """With every other table's trigger out of the way, the table's own trigger still refuses."""
    import pgtrigger

    model = next(m for m in apps.get_models() if m._meta.db_table == table)
    own = f"{model._meta.label}:"
    others = [t for t in append_only_triggers() if not t.startswith(own)]
    with (
        pytest.raises(DatabaseError) as err,
        pgtrigger.ignore(*others),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"TRUNCATE {table} CASCADE")
    assert f"pgtrigger: Cannot truncate the append-only table {table}" in str(err.value)
    assert _row_counts() == populated


@pytest.mark.parametrize(
    "sql",
    [
        *(
            f"UPDATE {table} SET {column} = 'forged'"  # noqa: S608
            for table, column in APPEND_ONLY_TABLES.items()
        ),
        *(f"DELETE FROM {table}" for table in [*APPEND_ONLY_TABLES, *UNDELETABLE_TABLES]),  # noqa: S608
    ],
)
def test_append_only_rows_cannot_be_changed_or_removed(populated: dict[str, int], sql: str) -> None:
    from reviews.models import ApprovalPolicy

    policy = ApprovalPolicy.objects.get()
    with pytest.raises(DatabaseError) as err, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert "pgtrigger: Cannot" in str(err.value)
    assert _row_counts() == populated
    assert ApprovalPolicy.objects.get().reason == policy.reason == "one reviewer"
