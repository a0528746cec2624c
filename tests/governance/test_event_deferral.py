"""Events are appended when the outermost service transaction ends: the log's lock is taken last.

(The races this prevents are in tests/postgres/test_lock_order.py.)
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts import services as accounts
from accounts.models import Tenant
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event, EventChainHead
from governance.kernel.events.services import appending as events
from governance.kernel.events.services import event_record, verify_database
from tests.reviews.conftest import people

__all__ = ["people"]  # a fixture, imported for use here

pytestmark = pytest.mark.django_db


def kinds_after(seq: int) -> list[str]:
    return list(Event.objects.filter(seq__gt=seq).order_by("seq").values_list("kind", flat=True))


@pytest.fixture
def head(acme: Any) -> int:
    accounts.tenant_create(slug="first", name="First", actor=None)  # the key is registered
    return EventChainHead.objects.get().seq


def test_a_service_event_is_appended_when_the_outermost_block_ends(head: int) -> None:
    with transaction.atomic():
        tenant = accounts.tenant_create(slug="beta", name="Beta", actor=None)
        event = event_record(kind=EventKind.TENANT_CREATED, actor=None, payload={"n": 2})
        assert kinds_after(head) == []  # nothing locked the log yet
        assert event.seq is None
        Tenant.objects.select_for_update().get(pk=tenant.pk)  # a row lock after "recording"
    assert kinds_after(head) == [EventKind.TENANT_CREATED, EventKind.TENANT_CREATED]
    assert event.seq == head + 2  # the returned event is the appended one
    assert Event.objects.get(seq=head + 1).payload["slug"] == "beta"  # in recording order
    assert verify_database().ok


def _create_then_fail(slug: str) -> None:
    """Create a tenant in a block of its own, then fail it: the block rolls back."""
    with transaction.atomic():
        accounts.tenant_create(slug=slug, name=slug.title(), actor=None)
        raise RuntimeError("boom")


def test_a_block_that_rolls_back_takes_its_events_with_it(head: int) -> None:
    with transaction.atomic():
        accounts.tenant_create(slug="kept", name="Kept", actor=None)
        with pytest.raises(RuntimeError):
            _create_then_fail("undone")
        accounts.tenant_create(slug="after", name="After", actor=None)
    slugs = [e.payload["slug"] for e in Event.objects.filter(seq__gt=head).order_by("seq")]
    assert slugs == ["kept", "after"]
    assert not Tenant.objects.filter(slug="undone").exists()
    assert verify_database().ok


def test_a_transaction_marked_for_rollback_appends_nothing(head: int) -> None:
    with transaction.atomic():
        accounts.tenant_create(slug="gone", name="Gone", actor=None)
        transaction.set_rollback(True)
    assert kinds_after(head) == []
    assert EventChainHead.objects.get().seq == head


def test_a_failing_append_rolls_the_service_back(
    head: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_: Any) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(events, "_insert_and_advance", broken)
    with pytest.raises(RuntimeError, match="disk is full"):
        accounts.tenant_create(slug="half", name="Half", actor=None)
    assert not Tenant.objects.filter(slug="half").exists()  # no state change without its event
    monkeypatch.undo()
    accounts.tenant_create(slug="half", name="Half", actor=None)  # the connection still works
    assert kinds_after(head) == [EventKind.TENANT_CREATED]
    assert verify_database().ok


def test_a_bad_event_is_refused_where_it_is_recorded(head: int) -> None:
    with pytest.raises(Exception, match="canonical"), transaction.atomic():
        event_record(kind=EventKind.TENANT_CREATED, actor=None, payload={"n": float("nan")})
    assert kinds_after(head) == []


# --- every service takes the log's lock last ------------------------------------------------

ALLOWED_AFTER_LOG_LOCK = (
    'INSERT INTO "governance_event"',  # the events (SQLite: one statement each)
    'WITH appended AS (INSERT INTO "governance_event"',  # the events and the head (PostgreSQL)
    'UPDATE "governance_eventchainhead"',  # the head (SQLite)
    "RELEASE SAVEPOINT",  # the service's own block ending, inside the test's transaction
)


def assert_log_locked_last(run: Any) -> None:
    """Run one service; the chain head is locked once, and after it only the events are written."""
    with CaptureQueriesContext(connection) as captured:
        run()
    statements = [q["sql"] for q in captured.captured_queries]
    locks = [i for i, sql in enumerate(statements) if "SELECT seq, entry_hash, key_id" in sql]
    assert len(locks) == 1, statements
    after = statements[locks[0] + 1 :]
    assert after, "the events were not written"
    wrong = [sql for sql in after if not sql.startswith(ALLOWED_AFTER_LOG_LOCK)]
    assert not wrong, f"statements after the event log's lock: {wrong}"


def test_every_service_takes_the_log_lock_last(acme: Any, people: dict[str, Any]) -> None:
    """Services that lock rows after recording events (evidence voiding other changes' approvals,
    promotions setting stages, the sweep) still take the log's lock last, whatever their shape."""
    from datetime import timedelta

    from django.utils import timezone

    from registry import services as registry
    from reviews import services as reviews
    from reviews.choices import CheckKind, CheckStatus
    from reviews.models import CheckRun
    from reviews.waivers import services as governance
    from tests.reviews.conftest import make_artifact, publish

    registry.install_builtin_classes()
    card = make_artifact(acme, "scorecard", "card", owner=people["admin"])
    v1 = publish(card, data={"run": 1})
    v2 = publish(card, data={"run": 2})
    changes = [
        reviews.change_create(
            tenant=acme, actor=people["author"], title=t, rollback_plan="Back", proposed=[v1]
        )
        for t in ("One", "Two")
    ]
    reviews.change_submit(change=changes[1], actor=people["author"])
    for run in CheckRun.objects.filter(change=changes[1], status=CheckStatus.PENDING):
        reviews.check_execute(run=run)
    for who in ("reviewer", "admin"):
        reviews.approval_decide(change=changes[1], actor=people[who], decision="approve")

    assert_log_locked_last(lambda: publish(card, data={"run": 3}))
    # Voids the approvals of the other change proposing v1 and sends it back to review.
    assert_log_locked_last(
        lambda: reviews.evidence_attach(
            change=changes[0], actor=None, version=v1, metrics={"accuracy": 0.9}
        )
    )
    reviews.approval_decide(change=changes[1], actor=people["reviewer"], decision="approve")
    assert_log_locked_last(
        lambda: reviews.approval_decide(
            change=changes[1], actor=people["admin"], decision="approve"
        )
    )
    assert_log_locked_last(lambda: reviews.change_promote(change=changes[1], actor=people["admin"]))
    assert_log_locked_last(
        lambda: registry.version_deprecate(
            version=v2,
            replacement=v1,
            reason="Superseded.",
            remove_after_days=7,
            actor=people["admin"],
        )
    )
    assert_log_locked_last(
        lambda: governance.waiver_grant(
            tenant=acme,
            actor=people["admin"],
            check_kind=CheckKind.PACK_VERIFICATION,
            owner=people["author"],
            artifacts=[card],
            justification="The corpus is too small to judge accuracy.",
            mitigation="An agent reads every reply before it is sent.",
            expires_at=timezone.now() + timedelta(days=5),
        )
    )
    assert_log_locked_last(
        lambda: registry.deprecations_remove_due(now=timezone.now() + timedelta(days=8))
    )
    assert verify_database().ok


def test_a_transaction_with_thousands_of_events_appends_them_all(head: int) -> None:
    """More than one statement's worth (PostgreSQL takes at most 65,535 parameters)."""
    count = events.APPEND_BATCH * 2 + 500
    with transaction.atomic():
        for i in range(count):
            event_record(kind=EventKind.TENANT_CREATED, actor=None, payload={"i": i})
    seqs = list(Event.objects.filter(seq__gt=head).order_by("seq").values_list("seq", "payload"))
    assert [s for s, _ in seqs] == list(range(head + 1, head + count + 1))
    assert [p["i"] for _, p in seqs] == list(range(count))
    assert EventChainHead.objects.get().seq == head + count
    assert verify_database().ok


def test_pack_verification_counts_a_publication_earlier_in_the_same_transaction(
    acme: Any,
) -> None:
    """Its event is not in the table until the transaction ends, but it will be (the seed)."""
    from registry import services as registry
    from registry.verification import verify_versions
    from tests.reviews.conftest import make_artifact, publish

    registry.install_builtin_classes()
    with transaction.atomic():
        card = make_artifact(acme, "scorecard", "card")
        version = publish(card, data={"run": 1})
        assert not Event.objects.filter(kind=EventKind.ARTIFACT_VERSION_PUBLISHED).exists()
        checked, failure = verify_versions([version])
        assert (checked, failure) == (1, None)
    assert verify_versions([version]) == (1, None)
