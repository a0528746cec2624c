"""The auditor's half of passkey sign-off: every passkey approval in an exported log is checked
offline against the registered public keys (``python -m governance.verify``), and in the live
log (``manage.py events verify``), which also compares the stored approval rows with their
signed events.

The hostile server signs its log validly: the forgeries below are either appended through the
real ``event_record`` (so the chain holds) or written into a bundle whose hashes and
signatures are recomputed with the server's own key. Only the approver's key can make a
passkey approval hold.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management import call_command
from django.db import transaction

from accounts import services as accounts
from accounts.passkeys import RelyingParty
from governance.kernel import passkey_proof
from governance.kernel.events import keys as keystore
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.events.services import event_record, iso_time, verify_database
from governance.kernel.verify import BUNDLE_FORMAT, Result, verify_bundle_file
from reviews import services
from reviews.models import Approval
from reviews.policy import DEFAULT_RULES
from reviews.services.common import change_subject
from tests.factories import EVIDENCE_METRICS, run_pending_checks
from tests.governance.test_verify import export, run_offline_verifier
from tests.passkey_authenticator import SoftAuthenticator

PARTY = RelyingParty(rp_id="testserver", origin="http://testserver")


def register(user: Any, device: SoftAuthenticator) -> Any:
    challenge, options = accounts.passkey_registration_begin(user=user, party=PARTY)
    return accounts.passkey_register(
        user=user, challenge_id=challenge.pk, credential=device.register(options), name="Laptop"
    )


@pytest.fixture
def signed(acme: Any, open_change: Any, prompt_v2: Any, people: dict[str, Any]) -> dict[str, Any]:
    """A change in review whose reviewer slot needs a passkey, signed off with one."""
    services.approval_policy_update(
        tenant=acme,
        actor=None,
        rules={**DEFAULT_RULES, "passkey_required": ["reviewer"]},
        reason="Reviewers sign with passkeys.",
    )
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
    device = SoftAuthenticator()
    passkey = register(people["reviewer"], device)
    row, _statement, options = services.sign_off_challenge(
        change=change,
        actor=people["reviewer"],
        decision="approve",
        requirement=None,
        comment="Looks right.",
        party=PARTY,
    )
    approval = services.approval_decide(
        change=change,
        actor=people["reviewer"],
        decision="approve",
        comment="Looks right.",
        passkey=services.PasskeyAnswer(challenge_id=row.pk, credential=device.sign(options)),
    )
    event = Event.objects.get(kind=EventKind.APPROVAL_GRANTED)
    return {
        "change": change,
        "approval": approval,
        "event": event,
        "passkey": passkey,
        "device": device,
        "reviewer": people["reviewer"],
    }


def named(signed: dict[str, Any]) -> str:
    change = signed["change"]
    return (
        f"passkey approval of {change.reference} revision {change.revision} by reviewer as reviewer"
    )


def offline(path: Path, **kw: Any) -> list[Result]:
    """The bundle through both offline paths: one process, and the file split across three."""
    return [
        verify_bundle_file(str(path), workers=1),
        verify_bundle_file(str(path), workers=3, min_parallel_bytes=0, **kw),
    ]


def expect_offline_failure(path: Path, seq: int, *fragments: str) -> None:
    for result in offline(path):
        assert not result.ok
        assert result.first_bad_seq == seq, result.line()
        for fragment in fragments:
            assert fragment in result.reason, result.reason
    proc = run_offline_verifier(str(path))
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"FAILED at seq {seq}: ")
    assert all(fragment in proc.stderr for fragment in fragments), proc.stderr


# --- the happy path ---------------------------------------------------------------------


def test_exported_passkey_approval_verifies_offline_without_django(
    signed: dict[str, Any], tmp_path: Path
) -> None:
    bundle = export(tmp_path)
    for result in offline(bundle):
        assert result.ok, result.line()
        assert result.passkey_approvals == 1
        assert result.passkey_user_verified == 1
        assert result.checked == Event.objects.count()
    proc = run_offline_verifier(str(bundle))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"OK: {Event.objects.count()} events verified"
    assert lines[2] == "1 passkey approval(s) verified (1 with user verification)"
    # And the live log says the same, with the stored row matching its event.
    out = io.StringIO()
    call_command("events", "verify", stdout=out)
    assert out.getvalue().splitlines() == [
        f"OK: {Event.objects.count()} events verified",
        "1 passkey approval(s) verified (1 with user verification)",
        "1 stored passkey approval(s) match their signed events",
    ]
    assert verify_database().passkey_approvals == 1


def test_revocation_after_signing_leaves_the_approval_provable(
    signed: dict[str, Any], tmp_path: Path
) -> None:
    """A key revoked later stays valid for what it signed before (the approval stops counting
    on the server, but it was signed)."""
    accounts.passkey_revoke(passkey=signed["passkey"], actor=signed["reviewer"], reason="Lost")
    assert all(r.ok and r.passkey_approvals == 1 for r in offline(export(tmp_path)))


def test_passkey_rejection_verifies(
    signed: dict[str, Any], tmp_path: Path, open_change: Any, prompt: Any
) -> None:
    from tests.reviews.conftest import PINS, publish

    version = publish(prompt, text="Qualify {{ customer }} briskly.", metadata=PINS)
    change = open_change(version, title="Another tune")
    services.evidence_attach(
        change=change,
        actor=None,
        version=version,
        metrics=EVIDENCE_METRICS,
        seed="42",
        test_run_ids=["ci-2"],
    )
    change = services.change_submit(change=change, actor=change.author)
    run_pending_checks(change)
    row, _statement, options = services.sign_off_challenge(
        change=change,
        actor=signed["reviewer"],
        decision="reject",
        requirement=None,
        comment="Too brisk.",
        party=PARTY,
    )
    services.approval_decide(
        change=change,
        actor=signed["reviewer"],
        decision="reject",
        comment="Too brisk.",
        passkey=services.PasskeyAnswer(
            challenge_id=row.pk, credential=signed["device"].sign(options)
        ),
    )
    assert Event.objects.filter(kind=EventKind.APPROVAL_REJECTED).count() == 1
    assert all(r.ok and r.passkey_approvals == 2 for r in offline(export(tmp_path)))


def test_started_mid_log_does_not_check_passkeys(signed: dict[str, Any]) -> None:
    result = verify_database(from_seq=signed["event"].seq)
    assert result.ok
    assert result.passkey_approvals == 0
    assert "passkey approvals not checked" in result.notes[0]


# --- a hostile server rewrites the bundle and re-signs it ---------------------------------


Edit = Callable[[int, dict[str, Any]], dict[str, Any] | bytes | None]


def rewrite(path: Path, edit: Edit) -> Path:
    """Re-write a bundle as the server could: ``edit(seq, payload)`` returns a new payload (or
    its bytes, or None to keep it); every later hash is recomputed and every entry re-signed with the
    server's key. Checkpoints are left out (the server would re-sign those too)."""
    lines = path.read_bytes().rstrip(b"\n").split(b"\n")
    head = json.loads(lines[0])
    assert head["format"] == BUNDLE_FORMAT
    head["checkpoints"] = []
    out = [json.dumps(head, sort_keys=True).encode()]
    prev = "0" * 64
    for line in lines[1:]:
        seq_text, _hash, kid, _sig, header_bytes, payload_bytes = line.split(b"\t")
        seq = int(seq_text)
        payload = json.loads(payload_bytes)
        changed = edit(seq, copy.deepcopy(payload))
        if isinstance(changed, bytes):
            payload_bytes = changed
        elif changed is not None:
            payload_bytes = rfc8785.dumps(changed)
        header = json.loads(header_bytes)
        header["payload_sha256"] = hashlib.sha256(payload_bytes).hexdigest()
        header["prev"] = prev
        header_bytes = rfc8785.dumps(header)
        entry_hash = hashlib.sha256(header_bytes).hexdigest()
        signature = keystore.sign(kid.decode(), bytes.fromhex(entry_hash))
        out.append(
            b"\t".join(
                [
                    seq_text,
                    entry_hash.encode(),
                    kid,
                    signature.encode(),
                    header_bytes,
                    payload_bytes,
                ]
            )
        )
        prev = entry_hash
    forged = path.with_name("forged.bundle")
    forged.write_bytes(b"\n".join(out) + b"\n")
    return forged


def at_approval(
    signed: dict[str, Any], change: Callable[[dict[str, Any]], None]
) -> Callable[[int, dict[str, Any]], dict[str, Any] | None]:
    def edit(seq: int, payload: dict[str, Any]) -> dict[str, Any] | None:
        if seq != signed["event"].seq:
            return None
        change(payload)
        return payload

    return edit


def test_resigned_bundle_without_changes_still_verifies(
    signed: dict[str, Any], tmp_path: Path
) -> None:
    """The rewriting helper itself forges nothing: an untouched re-signed log verifies."""
    forged = rewrite(export(tmp_path), lambda _seq, _payload: None)
    assert all(r.ok and r.passkey_approvals == 1 for r in offline(forged))


@pytest.mark.parametrize(
    ("field", "flip"),
    [
        ("signature", lambda data: data[:-1] + bytes([data[-1] ^ 1])),
        # The authenticator data: another sign count than the one signed.
        ("authenticator_data", lambda data: data[:33] + (999).to_bytes(4, "big") + data[37:]),
    ],
)
def test_altered_assertion_fails_and_names_the_approval(
    signed: dict[str, Any], tmp_path: Path, field: str, flip: Callable[[bytes], bytes]
) -> None:
    def alter(payload: dict[str, Any]) -> None:
        assertion = payload["passkey"]["assertion"]
        assertion[field] = passkey_proof.b64url_encode(
            flip(passkey_proof.b64url_decode(assertion[field]))
        )

    forged = rewrite(export(tmp_path), at_approval(signed, alter))
    expect_offline_failure(
        forged,
        signed["event"].seq,
        named(signed),
        "the signature does not match the statement and the registered key",
    )


def _restate(payload: dict[str, Any], **changes: Any) -> None:
    statement = json.loads(payload["passkey"]["statement"])
    statement.update(changes)
    text = passkey_proof.statement_bytes(statement).decode()
    payload["passkey"]["statement"] = text
    payload["passkey"]["statement_sha256"] = hashlib.sha256(text.encode()).hexdigest()


def test_altered_statement_with_its_hash_recomputed_fails(
    signed: dict[str, Any], tmp_path: Path
) -> None:
    """The server claims the approver signed another revision: event and statement agree, the
    signature does not."""

    def alter(payload: dict[str, Any]) -> None:
        payload["revision"] += 1
        _restate(payload, revision=payload["revision"])

    forged = rewrite(export(tmp_path), at_approval(signed, alter))
    change = signed["change"]
    expect_offline_failure(
        forged,
        signed["event"].seq,
        f"passkey approval of {change.reference} revision {change.revision + 1} by reviewer",
        "the signed challenge is not the hash of the statement",
    )


def test_statement_that_differs_from_the_logged_approval_fails(
    signed: dict[str, Any], tmp_path: Path
) -> None:
    """A statement for another decision than the one logged (hash recomputed)."""
    forged = rewrite(
        export(tmp_path), at_approval(signed, lambda p: _restate(p, decision="reject"))
    )
    expect_offline_failure(
        forged,
        signed["event"].seq,
        named(signed),
        "the signed statement differs from the logged approval (decision)",
    )


def test_statement_hash_that_does_not_match_fails(signed: dict[str, Any], tmp_path: Path) -> None:
    def alter(payload: dict[str, Any]) -> None:
        payload["passkey"]["statement_sha256"] = "0" * 64

    forged = rewrite(export(tmp_path), at_approval(signed, alter))
    expect_offline_failure(
        forged, signed["event"].seq, named(signed), "statement_sha256 is not the SHA-256"
    )


def test_replaced_public_key_fails_at_the_approval(signed: dict[str, Any], tmp_path: Path) -> None:
    """The server swaps the registered key for one of its own: the approver's signature no
    longer holds under it."""
    registered = Event.objects.get(kind=EventKind.PASSKEY_REGISTERED)
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    spki = passkey_proof.b64url_encode(
        other.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )

    def edit(seq: int, payload: dict[str, Any]) -> dict[str, Any] | None:
        if seq != registered.seq:
            return None
        payload["public_key_spki"] = spki
        return payload

    forged = rewrite(export(tmp_path), edit)
    expect_offline_failure(
        forged,
        signed["event"].seq,
        named(signed),
        "the signature does not match the statement and the registered key",
    )


def test_bundle_bytes_altered_without_resigning_fail_at_that_entry(
    signed: dict[str, Any], tmp_path: Path
) -> None:
    bundle = export(tmp_path)
    seq = signed["event"].seq
    lines = bundle.read_bytes().split(b"\n")
    lines[seq] = lines[seq].replace(b'"revision":', b'"revision":1', 1)
    bundle.write_bytes(b"\n".join(lines))
    for result in offline(bundle):
        assert not result.ok
        assert result.first_bad_seq == seq
        assert "payload does not match its signed digest" in result.reason


# --- a hostile server appends forged events through the real service ------------------------


def forge_approval(
    change: Any, actor: Any, device: SoftAuthenticator, credential_id: str, **changes: Any
) -> Event:
    """An approval the holder of ``device``'s key signed by hand, appended by the server with
    ``event_record`` as ``actor`` (so the chain and the server's signature hold)."""
    statement = {
        "format": passkey_proof.STATEMENT_FORMAT,
        "change": change.reference,
        "change_uuid": str(change.pk),
        "tenant": change.tenant.slug,
        "revision": change.revision,
        "binding_sha256": change.binding_sha256,
        "decision": "approve",
        "requirement": "reviewer",
        "approver": str(actor.pk),
        "comment_sha256": passkey_proof.comment_digest(""),
        "time": iso_time(changes.pop("at")),
        "rp_id": PARTY.rp_id,
        "origin": PARTY.origin,
    }
    text = passkey_proof.statement_bytes(statement).decode()
    answer = device.sign(
        {"challenge": passkey_proof.b64url_encode(passkey_proof.challenge_of(text))}
    )
    assertion = {
        "credential_id": credential_id,
        "authenticator_data": answer["response"]["authenticatorData"],
        "client_data_json": answer["response"]["clientDataJSON"],
        "signature": answer["response"]["signature"],
        "user_handle": "",
    }
    # The signature holds under the device's key: only the log's registrations can refuse it.
    passkey_proof.check_assertion(
        text, passkey_proof.Assertion.from_json(assertion), device_spki(device)
    )
    with transaction.atomic():
        event_record(
            kind=EventKind.APPROVAL_GRANTED,
            actor=actor,
            tenant=change.tenant,
            subject=change_subject(change),
            payload={
                "change": change.reference,
                "requirement": "reviewer",
                "revision": change.revision,
                "binding_sha256": change.binding_sha256,
                "comment": "",
                "passkey": {
                    "credential_id": credential_id,
                    "statement": text,
                    "statement_sha256": hashlib.sha256(text.encode()).hexdigest(),
                    "assertion": assertion,
                },
            },
        )
    return Event.objects.order_by("-seq").first()  # type: ignore[return-value]


def device_spki(device: SoftAuthenticator) -> str:
    return passkey_proof.b64url_encode(
        device.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def expect_everywhere(seq: int, tmp_path: Path, *fragments: str) -> None:
    """The forged event fails the live check and the offline one, at its seq."""
    live = verify_database()
    assert not live.ok
    assert live.first_bad_seq == seq, live.line()
    assert all(f in live.reason for f in fragments), live.reason
    err = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("events", "verify", stdout=io.StringIO(), stderr=err)
    assert err.getvalue().startswith(f"FAILED at seq {seq}: ")
    expect_offline_failure(export(tmp_path), seq, *fragments)


def test_approval_signed_after_the_key_was_revoked_fails(
    signed: dict[str, Any], tmp_path: Path
) -> None:
    """A lost laptop: the key is revoked, whoever holds it signs on; the server logs it."""
    from django.utils import timezone

    accounts.passkey_revoke(passkey=signed["passkey"], actor=signed["reviewer"], reason="Lost")
    forged = forge_approval(
        signed["change"],
        signed["reviewer"],
        signed["device"],
        signed["passkey"].credential_id,
        at=timezone.now(),
    )
    expect_everywhere(
        forged.seq,
        tmp_path,
        named(signed),
        f"credential {signed['passkey'].credential_id} was revoked at",
    )


def test_credential_registered_to_another_user_fails(
    signed: dict[str, Any], tmp_path: Path, people: dict[str, Any]
) -> None:
    """Someone else's key signs an approval in the reviewer's name."""
    from django.utils import timezone

    device = SoftAuthenticator()
    theirs = register(people["security"], device)
    forged = forge_approval(
        signed["change"], signed["reviewer"], device, theirs.credential_id, at=timezone.now()
    )
    expect_everywhere(
        forged.seq,
        tmp_path,
        named(signed),
        f"credential {theirs.credential_id} is registered to another user",
    )


def test_unregistered_credential_fails(signed: dict[str, Any], tmp_path: Path) -> None:
    from django.utils import timezone

    device = SoftAuthenticator()
    credential = passkey_proof.b64url_encode(device.credential_id)
    forged = forge_approval(
        signed["change"], signed["reviewer"], device, credential, at=timezone.now()
    )
    expect_everywhere(forged.seq, tmp_path, named(signed), "was not registered earlier in the log")


# --- the stored rows against their signed events (server side) ----------------------------


@pytest.mark.parametrize("column", ["passkey_statement", "passkey_assertion"])
def test_stored_passkey_columns_that_differ_from_the_event_fail(
    signed: dict[str, Any], column: str
) -> None:
    approval = signed["approval"]
    if column == "passkey_statement":
        value: Any = approval.passkey_statement.replace('"revision":', '"revision":1', 1)
    else:
        value = {**approval.passkey_assertion, "signature": "AAAA"}
    Approval.objects.filter(pk=approval.pk).update(**{column: value})  # a database edit
    assert verify_database().ok  # the log itself is intact
    err = io.StringIO()
    with pytest.raises(SystemExit) as code:
        call_command("events", "verify", stdout=io.StringIO(), stderr=err)
    assert code.value.code == 1
    change = signed["change"]
    assert err.getvalue().startswith(
        f"FAILED at seq {signed['event'].seq}: stored passkey approval of {change.reference} "
        f"revision {change.revision} by reviewer as reviewer: its columns differ from its "
        f"signed event ({column})"
    ), err.getvalue()


def test_replayed_approval_event_fails(signed: dict[str, Any], tmp_path: Path) -> None:
    """The server logs the approver's genuine signed approval a second time."""
    genuine = signed["event"]
    with transaction.atomic():
        event_record(
            kind=EventKind.APPROVAL_GRANTED,
            actor=signed["reviewer"],
            tenant=signed["change"].tenant,
            subject=change_subject(signed["change"]),
            payload=genuine.payload,
        )
    replay = Event.objects.order_by("-seq").first()
    assert replay is not None
    expect_everywhere(
        replay.seq,
        tmp_path,
        named(signed),
        f"the same signed statement was logged before, at seq {genuine.seq} (a replay)",
    )


def test_approval_hidden_behind_json_escapes_is_still_checked(
    signed: dict[str, Any], tmp_path: Path
) -> None:
    """A server that spells the payload's "passkey" with a JSON escape does not slip a forged
    signature past the byte pre-filter."""

    def edit(seq: int, payload: dict[str, Any]) -> bytes | None:
        if seq != signed["event"].seq:
            return None
        assertion = payload["passkey"]["assertion"]
        assertion["signature"] = passkey_proof.b64url_encode(b"\x30" * 70)
        return bytes(rfc8785.dumps(payload)).replace(b'"passkey":', b'"passk\\u0065y":')

    forged = rewrite(export(tmp_path), edit)
    assert b'"passk\\u0065y":' in forged.read_bytes()
    expect_offline_failure(
        forged,
        signed["event"].seq,
        named(signed),
        "the signature does not match the statement and the registered key",
    )


def test_the_one_click_verification_says_how_many_passkey_approvals_it_proved(
    signed: dict[str, Any], make_user: Any
) -> None:
    from governance.kernel.events.models import VerificationRun
    from governance.kernel.events.services import verification_execute

    run = VerificationRun.objects.create(requested_by=None, total=Event.objects.count())
    done = verification_execute(run=run)
    assert done.status == VerificationRun.Status.PASSED
    assert done.reason == (
        f"OK: {Event.objects.count()} events verified; 1 passkey approval(s) verified"
    )
