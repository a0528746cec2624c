"""``manage.py changes show`` marks passkey sign-offs; ``changes approve`` (a password on stdin)
is refused where the policy asks for a passkey."""

from __future__ import annotations

import io
import sys
from typing import Any

import pytest
from django.core.management import call_command

from accounts import services as accounts
from accounts.passkeys import RelyingParty
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from reviews import services
from reviews.policy import DEFAULT_RULES
from tests.factories import EVIDENCE_METRICS, run_pending_checks
from tests.passkey_authenticator import SoftAuthenticator

pytestmark = pytest.mark.django_db
PARTY = RelyingParty(rp_id="testserver", origin="http://testserver")


def show(reference: str) -> list[str]:
    out = io.StringIO()
    call_command("changes", "show", reference, stdout=out, stderr=io.StringIO())
    return out.getvalue().splitlines()


@pytest.fixture
def in_review(acme: Any, open_change: Any, prompt_v2: Any, people: dict[str, Any]) -> Any:
    services.approval_policy_update(
        tenant=acme,
        actor=None,
        rules={**DEFAULT_RULES, "passkey_required": ["reviewer"]},
        reason="Reviewers sign with passkeys.",
    )
    change = open_change(prompt_v2)
    services.evidence_attach(
        change=change, actor=None, version=prompt_v2, metrics=EVIDENCE_METRICS, seed="42"
    )
    change = services.change_submit(change=change, actor=people["author"])
    run_pending_checks(change)
    return change


def test_show_marks_passkey_sign_offs_and_what_does_not_count(
    in_review: Any, people: dict[str, Any]
) -> None:
    assert "  approval Reviewer: MISSING (passkey required)" in show(in_review.reference)
    assert "  approval Administrator: MISSING" in show(in_review.reference)
    device = SoftAuthenticator()
    reviewer = people["reviewer"]
    challenge, options = accounts.passkey_registration_begin(user=reviewer, party=PARTY)
    passkey = accounts.passkey_register(
        user=reviewer, challenge_id=challenge.pk, credential=device.register(options), name="Key"
    )
    row, _statement, options = services.sign_off_challenge(
        change=in_review,
        actor=reviewer,
        decision="approve",
        requirement=None,
        comment="",
        party=PARTY,
    )
    approval = services.approval_decide(
        change=in_review,
        actor=reviewer,
        decision="approve",
        passkey=services.PasskeyAnswer(challenge_id=row.pk, credential=device.sign(options)),
    )
    mark = f"[passkey 'Key' sha256:{approval.passkey_challenge[:16]}]"
    assert f"  approval Reviewer: reviewer {mark}" in show(in_review.reference)
    accounts.passkey_revoke(passkey=passkey, actor=None, reason="Lost")
    lines = show(in_review.reference)
    assert "  approval Reviewer: MISSING (passkey required)" in lines
    (line,) = [x for x in lines if x.startswith("  not counting:")]
    assert line.startswith(f"  not counting: approve by reviewer as Reviewer {mark}: signed with")
    assert "revoked" in line


def test_cli_password_sign_off_is_refused_where_a_passkey_is_required(
    in_review: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("pw\n"))
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command(
            "changes",
            "approve",
            in_review.reference,
            "--as",
            "reviewer",
            "--password-stdin",
            stdout=io.StringIO(),
            stderr=err,
        )
    assert exit_.value.code == 2
    (line,) = err.getvalue().strip().splitlines()
    assert line.startswith("error: passkey: Signing off as Reviewer needs your passkey")
    assert not Event.objects.filter(kind=EventKind.APPROVAL_GRANTED).exists()
