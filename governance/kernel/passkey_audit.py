"""Passkey approvals, checked from the log alone: the auditor's half of passkey sign-off.

Django-free (the standard library, ``cryptography`` and :mod:`governance.kernel.passkey_proof`),
so ``python -m governance.verify BUNDLE`` and ``manage.py events verify`` run the same check.

The walk reads entries in log order (``seq``, header bytes, payload bytes, ...) and keeps:

- ``passkey.registered``: credential id -> the public key (SubjectPublicKeyInfo), its user,
  relying party, ``seq`` and time;
- ``passkey.revoked``: credential id -> when and at which ``seq``.

Every ``approval.granted`` / ``approval.rejected`` whose payload carries ``passkey`` must hold:

1. ``statement_sha256`` is SHA-256 of the statement, and the statement is canonical;
2. the statement says what the logged approval says: the change, revision, binding hash,
   decision, role and comment digest of the payload, the approver of the header, the tenant
   and change of the header;
3. the credential was registered earlier in the log, to that approver, for the statement's
   relying party, and not revoked earlier in the log;
4. the assertion is a WebAuthn ``get`` for exactly that statement's challenge, with the user
   present, signed by the registered key (``passkey_proof.check_assertion``);
5. no earlier approval in the log carried the same statement (a replay).

The server signs the log but holds no approver's private key: it can withhold events, not
make one of these hold for an approval nobody signed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from governance.kernel import passkey_proof

APPROVAL_KINDS = {"approval.granted": "approve", "approval.rejected": "reject"}
REGISTERED = "passkey.registered"
REVOKED = "passkey.revoked"


def may_concern_passkeys(payload: bytes) -> bool:
    """The pre-filter, on a payload (or a whole bundle line): False only for bytes that cannot
    hold a passkey record, registration or revocation (each names a ``credential_id``). Most
    entries hold none, and three substring searches are all they cost. JSON may spell a name
    with escapes, which the server's canonical form never does for these names: any payload
    with a backslash is parsed too."""
    return b'"credential_id":' in payload or b'"passkey":' in payload or b"\\" in payload


@dataclass(frozen=True)
class RegisteredKey:
    credential_id: str
    public_key_spki: str
    user_id: str
    rp_id: str
    seq: int
    time: str


@dataclass(frozen=True)
class Revocation:
    seq: int
    time: str


@dataclass
class PasskeyAudit:
    """State of one ordered walk; :meth:`check` fits ``verify_entries(extra_check=...)``."""

    keys: dict[str, RegisteredKey] = field(default_factory=dict)
    revoked: dict[str, Revocation] = field(default_factory=dict)
    #: statement SHA-256 -> the seq of the approval that carried it (a statement signs once).
    statements: dict[str, int] = field(default_factory=dict)
    verified: int = 0
    user_verified: int = 0

    def check(self, entry: tuple[Any, ...]) -> str | None:
        """The problem with this entry's passkey content, or None (also None for other entries)."""
        seq, header, payload = entry[0], entry[1], entry[2]
        if not may_concern_passkeys(payload):
            return None
        try:
            head = json.loads(header)
            body = json.loads(payload)
        except ValueError:
            return None  # the chain pass reports bytes that are not an event
        if not isinstance(head, dict) or not isinstance(body, dict):
            return None
        kind = head.get("kind")
        if kind == REGISTERED:
            return self._registered(seq, head, body)
        if kind == REVOKED:
            self._revoked(seq, head, body)
        elif kind in APPROVAL_KINDS and "passkey" in body:
            problem = self._approval(seq, head, body, APPROVAL_KINDS[kind])
            if problem:
                return f"{describe(head, body)}: {problem}"
            self.verified += 1
        return None

    def _registered(self, seq: int, head: dict[str, Any], body: dict[str, Any]) -> str | None:
        credential = body.get("credential_id")
        spki = body.get("public_key_spki")
        user = body.get("user_id")
        if not all(isinstance(v, str) and v for v in (credential, spki, user)):
            return "passkey registration lacks its credential id, public key or user"
        if credential in self.keys:
            return f"passkey {credential} is registered a second time"
        self.keys[str(credential)] = RegisteredKey(
            credential_id=str(credential),
            public_key_spki=str(spki),
            user_id=str(user),
            rp_id=str(body.get("rp_id") or ""),
            seq=seq,
            time=str(head.get("time") or ""),
        )
        return None

    def _revoked(self, seq: int, head: dict[str, Any], body: dict[str, Any]) -> None:
        credential = str(body.get("credential_id") or "")
        if credential and credential not in self.revoked:
            self.revoked[credential] = Revocation(seq, str(head.get("time") or ""))

    def _approval(
        self, seq: int, head: dict[str, Any], body: dict[str, Any], decision: str
    ) -> str | None:
        try:
            text, statement, assertion = signed_record(body["passkey"])
            differ = statement_differences(statement, head, body, decision)
            if differ:
                raise passkey_proof.ProofError(
                    f"the signed statement differs from the logged approval ({', '.join(differ)})"
                )
            key = self._key_for(assertion, str(body["passkey"].get("credential_id") or ""))
            self._key_problem(key, statement)
            passkey_proof.check_assertion(text, assertion, key.public_key_spki)
        except passkey_proof.ProofError as exc:
            return str(exc)
        digest = hashlib.sha256(text.encode()).hexdigest()
        if digest in self.statements:
            return (
                f"the same signed statement was logged before, at seq {self.statements[digest]} "
                "(a replay)"
            )
        self.statements[digest] = seq
        if _user_verified(assertion):
            self.user_verified += 1
        return None

    def _key_for(self, assertion: passkey_proof.Assertion, credential: str) -> RegisteredKey:
        if assertion.credential_id != credential:
            raise passkey_proof.ProofError(
                "the assertion was made with another credential than the one named"
            )
        key = self.keys.get(credential)
        if key is None:
            raise passkey_proof.ProofError(
                f"credential {credential} was not registered earlier in the log"
            )
        return key

    def _key_problem(self, key: RegisteredKey, statement: dict[str, Any]) -> None:
        """Raise unless the key was the approver's, for this relying party, and not revoked."""
        credential = key.credential_id
        if key.user_id != statement["approver"]:
            raise passkey_proof.ProofError(
                f"credential {credential} is registered to another user ({key.user_id}, "
                f"seq {key.seq}), not to the approver"
            )
        if key.rp_id and key.rp_id != statement["rp_id"]:
            raise passkey_proof.ProofError(
                f"credential {credential} was registered for {key.rp_id}, not {statement['rp_id']}"
            )
        revocation = self.revoked.get(credential)
        if revocation is not None:
            raise passkey_proof.ProofError(
                f"credential {credential} was revoked at {revocation.time} (seq {revocation.seq}), "
                f"before this approval signed at {statement['time']}"
            )


def signed_record(
    signed: Any,
) -> tuple[str, dict[str, Any], passkey_proof.Assertion]:
    """(statement text, statement, assertion) of an approval's ``passkey`` record; raises
    ``ProofError`` when its statement hash, statement or assertion is not well formed."""
    if not isinstance(signed, dict):
        raise passkey_proof.ProofError("the passkey record is not an object")
    text = signed.get("statement")
    if not isinstance(text, str):
        raise passkey_proof.ProofError("the passkey record has no statement")
    if signed.get("statement_sha256") != hashlib.sha256(text.encode()).hexdigest():
        raise passkey_proof.ProofError("statement_sha256 is not the SHA-256 of the statement")
    statement = passkey_proof.parse_statement(text)
    return text, statement, passkey_proof.Assertion.from_json(signed.get("assertion"))


def statement_differences(
    statement: dict[str, Any], head: dict[str, Any], body: dict[str, Any], decision: str
) -> list[str]:
    """The statement's fields that do not say what the logged approval says."""
    actor = head.get("actor") if isinstance(head.get("actor"), dict) else {}
    subject = head.get("subject") if isinstance(head.get("subject"), dict) else {}
    comment = body.get("comment")
    expected: dict[str, Any] = {
        "change": body.get("change"),
        "revision": body.get("revision"),
        "binding_sha256": body.get("binding_sha256"),
        "decision": decision,
        "requirement": body.get("requirement"),
        "comment_sha256": passkey_proof.comment_digest(comment if isinstance(comment, str) else ""),
        "approver": (actor or {}).get("id"),
        "tenant": head.get("tenant"),
    }
    if subject and subject.get("id"):
        expected["change_uuid"] = subject.get("id")
    return [k for k, v in expected.items() if statement.get(k) != v]


def describe(head: dict[str, Any], body: dict[str, Any]) -> str:
    """``passkey approval of CR-2026-0003 revision 2 by alice as security_officer``."""
    actor = head.get("actor") if isinstance(head.get("actor"), dict) else {}
    who = (actor or {}).get("name") or (actor or {}).get("id") or "?"
    return (
        f"passkey approval of {body.get('change', '?')} revision {body.get('revision', '?')} "
        f"by {who} as {body.get('requirement', '?')}"
    )


def _user_verified(assertion: passkey_proof.Assertion) -> bool:
    data = passkey_proof.b64url_decode(assertion.authenticator_data)
    return len(data) > 32 and bool(data[32] & passkey_proof.FLAG_USER_VERIFIED)
