"""Passkey sign-off through the services: register, require, sign, refuse replays, revoke."""

from __future__ import annotations

from typing import Any

import pytest

from accounts import services as accounts
from accounts.passkeys import RelyingParty
from governance.kernel import passkey_proof
from governance.kernel.errors import Conflict, DomainError, Forbidden
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from reviews import selectors, services
from reviews.choices import ChangeStatus
from reviews.policy import DEFAULT_RULES
from tests.factories import EVIDENCE_METRICS, run_pending_checks
from tests.passkey_authenticator import SoftAuthenticator

PARTY = RelyingParty(rp_id="testserver", origin="http://testserver")


def register(user: Any, device: SoftAuthenticator, name: str = "Laptop") -> Any:
    challenge, options = accounts.passkey_registration_begin(user=user, party=PARTY)
    return accounts.passkey_register(
        user=user, challenge_id=challenge.pk, credential=device.register(options), name=name
    )


def sign(change: Any, user: Any, device: SoftAuthenticator, decision: str = "approve", **kw: Any):
    row, _statement, options = services.sign_off_challenge(
        change=change,
        actor=user,
        decision=decision,
        requirement=kw.pop("requirement", None),
        comment=kw.get("comment", ""),
        party=PARTY,
    )
    return services.PasskeyAnswer(challenge_id=row.pk, credential=device.sign(options))


@pytest.fixture
def passkey_policy(acme: Any) -> None:
    services.approval_policy_update(
        tenant=acme,
        actor=None,
        rules={**DEFAULT_RULES, "passkey_required": ["reviewer"]},
        reason="Reviewers sign with passkeys.",
    )


@pytest.fixture
def in_review(open_change: Any, prompt_v2: Any, people: dict[str, Any]) -> Any:
    change = open_change(prompt_v2)
    services.evidence_attach(
        change=change,
        actor=None,
        version=prompt_v2,
        metrics=EVIDENCE_METRICS,
        seed="42",
        test_run_ids=["ci-1"],
    )
    change = services.change_submit(change=change, actor=people["author"])
    run_pending_checks(change)
    return change


def test_register_logs_the_public_key(people: dict[str, Any]) -> None:
    device = SoftAuthenticator()
    passkey = register(people["reviewer"], device)
    event = Event.objects.get(kind=EventKind.PASSKEY_REGISTERED)
    assert event.payload["credential_id"] == passkey.credential_id
    assert event.payload["public_key_spki"] == passkey.public_key_spki
    assert event.payload["user_id"] == str(people["reviewer"].pk)
    assert passkey.algorithm == -7


def test_password_sign_off_refused_where_passkey_required(
    passkey_policy: None, in_review: Any, people: dict[str, Any]
) -> None:
    assert in_review.passkey_requirements == ["reviewer"]
    with pytest.raises(Forbidden) as refused:
        services.approval_decide(change=in_review, actor=people["reviewer"], decision="approve")
    assert refused.value.field == "passkey"
    assert not in_review.approvals.exists()


def test_passkey_sign_off_is_stored_logged_and_counts(
    passkey_policy: None, in_review: Any, people: dict[str, Any]
) -> None:
    device = SoftAuthenticator()
    passkey = register(people["reviewer"], device)
    approval = services.approval_decide(
        change=in_review,
        actor=people["reviewer"],
        decision="approve",
        passkey=sign(in_review, people["reviewer"], device),
    )
    assert approval.passkey == passkey
    statement = passkey_proof.parse_statement(approval.passkey_statement)
    assert statement["change"] == in_review.reference
    assert statement["revision"] == in_review.revision
    assert statement["binding_sha256"] == in_review.binding_sha256
    assert statement["requirement"] == "reviewer"
    event = Event.objects.filter(kind=EventKind.APPROVAL_GRANTED).get()
    assert event.payload["passkey"]["statement"] == approval.passkey_statement
    passkey_proof.check_assertion(
        approval.passkey_statement,
        passkey_proof.Assertion.from_json(event.payload["passkey"]["assertion"]),
        passkey.public_key_spki,
    )
    status = selectors.approval_status(in_review)
    assert [s.approval for s in status.slots if s.requirement == "reviewer"] == [approval]
    services.approval_decide(change=in_review, actor=people["admin"], decision="approve")
    in_review.refresh_from_db()
    assert in_review.status == ChangeStatus.APPROVED


def test_replayed_assertion_is_refused(
    passkey_policy: None, in_review: Any, people: dict[str, Any]
) -> None:
    device = SoftAuthenticator()
    register(people["reviewer"], device)
    answer = sign(in_review, people["reviewer"], device)
    services.approval_decide(
        change=in_review, actor=people["reviewer"], decision="approve", passkey=answer
    )
    # Revise: a new revision voids the approval; the old answer must not sign the new one.
    changed = services.change_revise(
        change=in_review, actor=people["author"], reason="Tweak", title="Tune it again"
    )
    changed = services.change_submit(change=changed, actor=people["author"])
    run_pending_checks(changed)
    with pytest.raises(Conflict):
        services.approval_decide(
            change=changed, actor=people["reviewer"], decision="approve", passkey=answer
        )
    assert not changed.approvals.filter(voided_at__isnull=True).exists()


def test_assertion_for_another_statement_is_refused(
    passkey_policy: None, in_review: Any, people: dict[str, Any]
) -> None:
    device = SoftAuthenticator()
    register(people["reviewer"], device)
    first, _s, _o = services.sign_off_challenge(
        change=in_review,
        actor=people["reviewer"],
        decision="approve",
        requirement=None,
        comment="",
        party=PARTY,
    )
    _second, _s2, options2 = services.sign_off_challenge(
        change=in_review,
        actor=people["reviewer"],
        decision="approve",
        requirement=None,
        comment="",
        party=PARTY,
    )
    # The signature over the second statement, sent as the answer to the first challenge.
    with pytest.raises(Forbidden):
        services.approval_decide(
            change=in_review,
            actor=people["reviewer"],
            decision="approve",
            passkey=services.PasskeyAnswer(challenge_id=first.pk, credential=device.sign(options2)),
        )
    assert not in_review.approvals.exists()


def test_revoked_passkey_approval_stops_counting(
    passkey_policy: None, in_review: Any, people: dict[str, Any]
) -> None:
    device = SoftAuthenticator()
    passkey = register(people["reviewer"], device)
    approval = services.approval_decide(
        change=in_review,
        actor=people["reviewer"],
        decision="approve",
        passkey=sign(in_review, people["reviewer"], device),
    )
    accounts.passkey_revoke(passkey=passkey, actor=people["reviewer"], reason="Lost laptop")
    status = selectors.approval_status(in_review)
    assert all(s.approval is None for s in status.slots if s.requirement == "reviewer")
    assert [a for a, _why in status.not_counting] == [approval]
    assert Event.objects.filter(kind=EventKind.PASSKEY_REVOKED).count() == 1
    with pytest.raises(DomainError):
        sign(in_review, people["reviewer"], device)  # no active passkey left


def test_promotion_refused_once_the_signing_passkey_is_revoked(
    passkey_policy: None, in_review: Any, people: dict[str, Any]
) -> None:
    device = SoftAuthenticator()
    passkey = register(people["reviewer"], device)
    services.approval_decide(
        change=in_review,
        actor=people["reviewer"],
        decision="approve",
        passkey=sign(in_review, people["reviewer"], device),
    )
    services.approval_decide(change=in_review, actor=people["admin"], decision="approve")
    in_review.refresh_from_db()
    assert in_review.status == ChangeStatus.APPROVED
    accounts.passkey_revoke(passkey=passkey, actor=None, reason="Key compromised")
    assert "missing approval from Reviewer" in selectors.promotion_blockers(in_review)
    with pytest.raises(Conflict) as refused:
        services.change_promote(change=in_review, actor=people["admin"])
    assert "Reviewer" in refused.value.message
    in_review.refresh_from_db()
    assert in_review.status == ChangeStatus.APPROVED


def test_policy_rejects_unknown_passkey_roles() -> None:
    from reviews.policy import PolicyError, validate

    with pytest.raises(PolicyError) as bad:
        validate({**DEFAULT_RULES, "passkey_required": ["auditor"]})
    assert bad.value.field == "passkey_required"
    assert validate({**DEFAULT_RULES, "passkey_required": ["*"]})["passkey_required"] == ["*"]
    assert "passkey_required" not in validate(DEFAULT_RULES)


def test_the_owner_hears_of_a_passkey_added_and_of_its_revocation(
    people: dict[str, Any],
) -> None:
    from governance.kernel.models import Notification

    reviewer = people["reviewer"]
    passkey = register(reviewer, SoftAuthenticator(), name="Phone")
    added = Notification.objects.get(user=reviewer)
    assert added.title == "A passkey was added to your account: 'Phone'"
    assert added.url == "/account/tokens/#passkeys"
    accounts.passkey_revoke(passkey=passkey, actor=None, reason="Phone lost")
    revoked = Notification.objects.filter(user=reviewer).exclude(pk=added.pk).get()
    assert revoked.title == "Your passkey 'Phone' was revoked by the system"
    assert revoked.body.startswith("Phone lost")
    accounts.passkey_revoke(passkey=passkey, actor=None, reason="again")  # changes nothing
    assert Notification.objects.filter(user=reviewer).count() == 2
