"""Passkey sign-off: the challenge (the hash of an approval statement), and its answer.

1. :func:`sign_off_challenge` writes the statement of what the approver is about to decide
   (change, revision, binding hash, decision, role, comment, time, where) and returns the
   WebAuthn request options whose challenge is SHA-256 of the statement's bytes.
2. The authenticator signs it; :func:`passkey_answer_check` (called by ``approval_decide``)
   takes the challenge once, checks the statement still describes the change as it stands and
   the decision being made, verifies the assertion against the approver's registered key
   (with ``webauthn``, and again with the offline verifier's own check), and returns what the
   approval stores and logs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import webauthn
from django.conf import settings
from django.utils import timezone
from webauthn.helpers import parse_authentication_credential_json
from webauthn.helpers.exceptions import WebAuthnException

from accounts.models import Passkey, PasskeyChallenge, User
from accounts.passkeys import RelyingParty, descriptors, user_verification
from accounts.services.passkeys import take_challenge
from governance.kernel import passkey_proof
from governance.kernel.errors import Conflict, DomainError, Forbidden
from governance.kernel.events.services import iso_time
from reviews import permissions
from reviews.choices import OPEN_STATES, Decision
from reviews.models import ChangeRequest


@dataclass(frozen=True)
class PasskeyAnswer:
    """What a browser (or an API client) sends back: the challenge's id and the credential
    JSON ``navigator.credentials.get`` returned."""

    challenge_id: Any
    credential: Any


@dataclass(frozen=True)
class PasskeySignature:
    """A checked passkey sign-off, as the approval stores it."""

    passkey: Passkey
    statement: str
    assertion: passkey_proof.Assertion

    @property
    def challenge_sha256(self) -> str:
        return hashlib.sha256(self.statement.encode()).hexdigest()

    def as_event(self) -> dict[str, Any]:
        return {
            "credential_id": self.passkey.credential_id,
            "statement": self.statement,
            "statement_sha256": self.challenge_sha256,
            "assertion": self.assertion.as_json(),
        }


def statement_for(
    *,
    change: ChangeRequest,
    actor: User,
    decision: str,
    requirement: str,
    comment: str,
    party: RelyingParty,
    at: Any,
) -> str:
    return passkey_proof.statement_bytes(
        {
            "format": passkey_proof.STATEMENT_FORMAT,
            "change": change.reference,
            "change_uuid": str(change.pk),
            "tenant": change.tenant.slug,
            "revision": change.revision,
            "binding_sha256": change.binding_sha256,
            "decision": decision,
            "requirement": requirement,
            "approver": str(actor.pk),
            "comment_sha256": passkey_proof.comment_digest(comment),
            "time": iso_time(at),
            "rp_id": party.rp_id,
            "origin": party.origin,
        }
    ).decode()


def sign_off_challenge(
    *,
    change: ChangeRequest,
    actor: User,
    decision: str,
    requirement: str | None,
    comment: str,
    party: RelyingParty,
) -> tuple[PasskeyChallenge, str, str]:
    """The challenge for signing this decision with a passkey: (row, statement, options JSON).

    Refused up front when the person cannot decide here or has no passkey. Nothing is logged:
    the approval is, when the answer comes back.
    """
    from reviews.services.approvals import decision_slot  # the slot rule, once

    if decision not in Decision.values:
        raise DomainError("Decide 'approve' or 'reject'.", field="decision")
    if change.status not in OPEN_STATES:  # nothing to sign: say so before who may sign
        raise Conflict(
            f"{change.reference} is {change.get_status_display().lower()}; it is not open for "
            "review.",
            field="status",
        )
    permissions.can_decide(actor, change, requirement).require()
    slot = decision_slot(change, actor, decision, requirement)
    credentials = list(
        Passkey.objects.filter(user=actor, revoked_at__isnull=True).values_list(
            "credential_id", flat=True
        )
    )
    if not credentials:
        raise Conflict(
            "You have no passkey: register one on your account page first.", field="passkey"
        )
    text = (comment or "").strip()
    if decision == Decision.REJECT and not text:  # as approval_decide would, after the signing
        raise DomainError("Say why you reject the change.", field="comment")
    now = timezone.now()
    statement = statement_for(
        change=change,
        actor=actor,
        decision=decision,
        requirement=slot,
        comment=text,
        party=party,
        at=now,
    )
    challenge_bytes = passkey_proof.challenge_of(statement)
    options = webauthn.generate_authentication_options(
        rp_id=party.rp_id,
        challenge=challenge_bytes,
        allow_credentials=descriptors(credentials),
        user_verification=user_verification(),
        timeout=settings.WEBAUTHN_CHALLENGE_SECONDS * 1000,
    )
    row = PasskeyChallenge.objects.create(
        user=actor,
        purpose=PasskeyChallenge.Purpose.SIGN_OFF,
        challenge=passkey_proof.b64url_encode(challenge_bytes),
        statement=statement,
        subject=str(change.pk),
        rp_id=party.rp_id,
        origin=party.origin,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.WEBAUTHN_CHALLENGE_SECONDS),
    )
    return row, statement, webauthn.options_to_json(options)


def passkey_answer_check(
    *,
    change: ChangeRequest,
    actor: User,
    decision: str,
    requirement: str,
    comment: str,
    answer: PasskeyAnswer,
) -> PasskeySignature:
    """Check a passkey answer for this decision (inside ``approval_decide``'s transaction,
    after the change's lock): refused unless it signs exactly this decision on the change as it
    stands now, with an active passkey of the approver's, once."""
    challenge = take_challenge(
        answer.challenge_id, user=actor, purpose=PasskeyChallenge.Purpose.SIGN_OFF
    )
    if challenge.subject != str(change.pk):
        raise Conflict(
            f"That passkey signature was made for another change, not {change.reference}.",
            field="passkey",
            code="passkey_replayed",
        )
    try:
        statement = passkey_proof.parse_statement(challenge.statement)
    except passkey_proof.ProofError as exc:
        raise Conflict(f"The challenge's statement is unusable: {exc}", field="passkey") from None
    _statement_matches(
        statement,
        change=change,
        actor=actor,
        decision=decision,
        requirement=requirement,
        comment=comment,
    )
    passkey, assertion = verify_answer(challenge, actor, answer.credential)
    return PasskeySignature(passkey=passkey, statement=challenge.statement, assertion=assertion)


def _statement_matches(
    statement: dict[str, Any],
    *,
    change: ChangeRequest,
    actor: User,
    decision: str,
    requirement: str,
    comment: str,
) -> None:
    expected = {
        "change_uuid": str(change.pk),
        "revision": change.revision,
        "binding_sha256": change.binding_sha256,
        "decision": decision,
        "requirement": requirement,
        "approver": str(actor.pk),
        "comment_sha256": passkey_proof.comment_digest(comment),
    }
    wrong = [key for key, value in expected.items() if statement.get(key) != value]
    if wrong:
        raise Conflict(
            "That passkey signature does not sign this decision on the change as it stands "
            f"({', '.join(wrong)} differ); sign again.",
            field="passkey",
            code="passkey_statement_mismatch",
        )


def verify_answer(
    challenge: PasskeyChallenge, actor: User, credential: Any
) -> tuple[Passkey, passkey_proof.Assertion]:
    """Verify the credential JSON against the approver's passkey; lock and update the key."""
    try:
        text = credential if isinstance(credential, str) else json.dumps(credential)
        parsed = parse_authentication_credential_json(text)
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise DomainError(
            f"The passkey answer is not a WebAuthn assertion: {exc}", field="passkey"
        ) from None
    credential_id = passkey_proof.b64url_encode(parsed.raw_id)
    passkey = (
        Passkey.objects.select_for_update().filter(credential_id=credential_id, user=actor).first()
    )
    if passkey is None:
        raise Forbidden("That passkey is not registered to you.", field="passkey")
    if passkey.revoked_at is not None:
        raise Forbidden("That passkey was revoked; it signs nothing.", field="passkey")
    try:
        verified = webauthn.verify_authentication_response(
            credential=parsed,
            expected_challenge=passkey_proof.b64url_decode(challenge.challenge),
            expected_rp_id=challenge.rp_id,
            expected_origin=challenge.origin,
            credential_public_key=passkey_proof.b64url_decode(passkey.public_key_cose),
            credential_current_sign_count=passkey.sign_count,
            require_user_verification=settings.WEBAUTHN_REQUIRE_USER_VERIFICATION,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise Forbidden(f"The passkey signature does not hold: {exc}", field="passkey") from None
    response = parsed.response
    assertion = passkey_proof.Assertion(
        credential_id=credential_id,
        authenticator_data=passkey_proof.b64url_encode(response.authenticator_data),
        client_data_json=passkey_proof.b64url_encode(response.client_data_json),
        signature=passkey_proof.b64url_encode(response.signature),
        user_handle=passkey_proof.b64url_encode(response.user_handle or b""),
    )
    try:  # what an auditor will run offline must agree, or the approval is not recorded
        passkey_proof.check_assertion(
            challenge.statement,
            assertion,
            passkey.public_key_spki,
            require_user_verification=settings.WEBAUTHN_REQUIRE_USER_VERIFICATION,
        )
    except passkey_proof.ProofError as exc:
        raise Forbidden(f"The passkey signature does not hold: {exc}", field="passkey") from None
    passkey.sign_count = verified.new_sign_count
    passkey.last_used_at = timezone.now()
    passkey.save(update_fields=["sign_count", "last_used_at"])
    return passkey, assertion
