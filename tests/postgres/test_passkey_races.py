"""Passkey sign-off under races, in parallel processes against PostgreSQL.

One signed answer sent eight times at once records one approval (the challenge is taken
once, under its row lock); a revocation racing sign-offs leaves no approval signed with the
key after its revocation counting; the log stays whole.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

import pytest
from django.db import connection

from accounts import services as accounts
from accounts.models import Passkey
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.events.services import verify_database
from registry import services as registry
from reviews import selectors, services
from reviews.choices import CheckStatus
from reviews.models import Approval, ChangeRequest, CheckRun
from reviews.policy import DEFAULT_RULES
from tests.passkey_authenticator import SoftAuthenticator
from tests.postgres.test_reviews import in_processes
from tests.reviews.conftest import PINS, make_artifact, people, publish
from tests.reviews.test_passkeys import register, sign

__all__ = ["people"]  # fixtures, imported for use here

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def passkey_change(acme: Any, people: dict[str, Any]) -> ChangeRequest:
    """A change in review whose every slot signs off with a passkey."""
    services.approval_policy_update(
        tenant=acme,
        actor=None,
        rules={**DEFAULT_RULES, "passkey_required": ["*"]},
        reason="Every sign-off with a passkey.",
    )
    registry.install_builtin_classes()
    prompt = make_artifact(acme, "prompt", "qualify-lead", owner=people["admin"])
    version = publish(prompt, impact="major", text="Qualify {{ customer }}.", metadata=PINS)
    change = services.change_create(
        tenant=acme,
        actor=people["author"],
        title="Tune",
        rollback_plan="Go back",
        proposed=[version],
    )
    services.evidence_attach(change=change, actor=None, version=version, metrics={"safety": 0.9})
    services.change_submit(change=change, actor=people["author"])
    for run in CheckRun.objects.filter(change=change, status=CheckStatus.PENDING):
        services.check_execute(run=run)
    change.refresh_from_db()
    assert change.passkey_requirements == change.requirements
    return change


def test_one_answer_sent_eight_times_records_one_approval(
    passkey_change: ChangeRequest, people: dict[str, Any]
) -> None:
    assert connection.vendor == "postgresql"
    reviewer = people["reviewer"]
    device = SoftAuthenticator()
    register(reviewer, device)
    answer = sign(passkey_change, reviewer, device)
    results = in_processes(
        8,
        lambda: services.approval_decide(
            change=ChangeRequest.objects.get(pk=passkey_change.pk),
            actor=reviewer,
            decision="approve",
            passkey=answer,
        ),
    )
    oks = [r for r in results if r.startswith("ok:")]
    assert not [r for r in results if r.startswith("crash:")], results
    approvals = list(Approval.objects.filter(change=passkey_change))
    assert len(approvals) == 1
    assert approvals[0].passkey is not None
    # Repeats return the recorded decision or are refused as an answered challenge: never a
    # second row, never a second event.
    assert all(r == f"ok:{approvals[0].pk}" for r in oks), results
    assert Event.objects.filter(kind=EventKind.APPROVAL_GRANTED).count() == 1
    assert verify_database().ok


def test_revocation_racing_sign_offs_leaves_nothing_counting(
    passkey_change: ChangeRequest, people: dict[str, Any]
) -> None:
    reviewer = people["reviewer"]
    device = SoftAuthenticator()
    passkey = register(reviewer, device)
    answer = sign(passkey_change, reviewer, device)

    tickets = multiprocessing.get_context("fork").Value("i", 0)

    def work() -> Any:
        with tickets.get_lock():
            tickets.value += 1
            mine = tickets.value
        if mine % 2:  # half the processes revoke, half sign off
            return accounts.passkey_revoke(
                passkey=Passkey.objects.get(pk=passkey.pk), actor=reviewer, reason="lost"
            )
        return services.approval_decide(
            change=ChangeRequest.objects.get(pk=passkey_change.pk),
            actor=reviewer,
            decision="approve",
            passkey=answer,
        )

    results = in_processes(6, work)
    assert not [r for r in results if r.startswith("crash:")], results
    passkey.refresh_from_db()
    status = selectors.approval_status(passkey_change)
    assert passkey.revoked_at is not None
    assert all(s.approval is None for s in status.slots if s.requirement == "reviewer")
    assert Approval.objects.filter(change=passkey_change).count() <= 1
    assert Event.objects.filter(kind=EventKind.PASSKEY_REVOKED).count() <= 1
    assert verify_database().ok
