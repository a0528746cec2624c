"""Passkey sign-off, checkable by anyone: the approval statement and its WebAuthn assertion.

Django-free (the standard library and ``cryptography`` only), so the offline verifier
(``python -m governance.verify``) and the server check an approval the same way.

An approver's authenticator signs ``authenticatorData || SHA-256(clientDataJSON)``; the
client data names the challenge, and the challenge is SHA-256 of the **approval
statement**: the RFC 8785 bytes of::

    {"approver": <user id>, "binding_sha256": ..., "change": "CR-0007", "change_uuid": ...,
     "comment_sha256": ..., "decision": "approve", "format": STATEMENT_FORMAT,
     "origin": "https://gov.example", "requirement": "security_officer", "revision": 2,
     "rp_id": "gov.example", "tenant": "acme", "time": "2026-12-03T12:00:00.000000Z"}

So the signature commits to exactly what was approved, by whom, in which role and when;
an assertion made for one change or revision fails for any other (a replay).

The public key is the credential's SubjectPublicKeyInfo (DER), which the server derives from
the COSE key at registration and records in the ``passkey.registered`` event.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

STATEMENT_FORMAT = "governance-approval-statement/1"

#: The statement's keys (all of them, none other).
STATEMENT_KEYS = frozenset(
    {
        "approver",
        "binding_sha256",
        "change",
        "change_uuid",
        "comment_sha256",
        "decision",
        "format",
        "origin",
        "requirement",
        "revision",
        "rp_id",
        "tenant",
        "time",
    }
)

#: Authenticator data flags (WebAuthn §6.1).
FLAG_USER_PRESENT = 0x01
FLAG_USER_VERIFIED = 0x04


class ProofError(ValueError):
    """Why a passkey approval does not hold (one sentence, for an auditor)."""


def b64url_decode(text: str) -> bytes:
    if not isinstance(text, str):
        raise ProofError("a base64url field is not text")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ProofError("a base64url field is malformed") from None


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def comment_digest(comment: str) -> str:
    return hashlib.sha256(comment.encode()).hexdigest()


def statement_bytes(statement: dict[str, Any]) -> bytes:
    """RFC 8785 bytes of a statement. Its values are ASCII-safe strings and small integers,
    for which sorted keys and compact separators are exactly RFC 8785."""
    if set(statement) != STATEMENT_KEYS:
        raise ProofError("the statement's fields are not those of an approval statement")
    return json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def challenge_of(statement_text: str) -> bytes:
    """The WebAuthn challenge for a statement: SHA-256 of its bytes."""
    return hashlib.sha256(statement_text.encode()).digest()


def parse_statement(statement_text: str) -> dict[str, Any]:
    """The statement's fields; its text must be its own canonical form (nothing hidden)."""
    try:
        statement = json.loads(statement_text)
    except ValueError:
        raise ProofError("the statement is not JSON") from None
    if not isinstance(statement, dict):
        raise ProofError("the statement is not a JSON object")
    if statement.get("format") != STATEMENT_FORMAT:
        raise ProofError(f"the statement is not in the format {STATEMENT_FORMAT}")
    if statement_bytes(statement) != statement_text.encode():
        raise ProofError("the statement is not in its canonical form")
    return statement


@dataclass(frozen=True)
class Assertion:
    """What a WebAuthn assertion carries (each field base64url, as stored and logged)."""

    credential_id: str
    authenticator_data: str
    client_data_json: str
    signature: str
    user_handle: str = ""

    @classmethod
    def from_json(cls, data: Any) -> Assertion:
        if not isinstance(data, dict):
            raise ProofError("the assertion is not an object")
        try:
            return cls(
                credential_id=str(data["credential_id"]),
                authenticator_data=str(data["authenticator_data"]),
                client_data_json=str(data["client_data_json"]),
                signature=str(data["signature"]),
                user_handle=str(data.get("user_handle") or ""),
            )
        except KeyError as exc:
            raise ProofError(f"the assertion lacks {exc.args[0]}") from None

    def as_json(self) -> dict[str, str]:
        return {
            "credential_id": self.credential_id,
            "authenticator_data": self.authenticator_data,
            "client_data_json": self.client_data_json,
            "signature": self.signature,
            "user_handle": self.user_handle,
        }


def load_public_key(spki_b64url: str) -> Any:
    try:
        return serialization.load_der_public_key(b64url_decode(spki_b64url))
    except (ValueError, TypeError, ProofError):
        raise ProofError("the registered public key is malformed") from None


def _signature_holds(public_key: Any, signature: bytes, message: bytes) -> bool:
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        elif isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, message)
        elif isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def check_assertion(
    statement_text: str,
    assertion: Assertion,
    public_key_spki: str,
    *,
    require_user_verification: bool = False,
) -> dict[str, Any]:
    """Check that ``assertion`` signs ``statement_text`` with the key; return the statement.

    Checks: the statement is canonical; the client data is a ``webauthn.get`` for exactly
    this statement's challenge at its origin; the authenticator data is for the statement's
    relying party, with the user present (and verified, when asked); the signature holds.
    Raises :class:`ProofError` naming the first thing that does not hold.
    """
    statement = parse_statement(statement_text)
    client_bytes = b64url_decode(assertion.client_data_json)
    try:
        client = json.loads(client_bytes)
    except ValueError:
        raise ProofError("the client data is not JSON") from None
    if not isinstance(client, dict) or client.get("type") != "webauthn.get":
        raise ProofError("the client data is not an assertion (type webauthn.get)")
    try:
        signed_challenge = b64url_decode(str(client.get("challenge", "")))
    except ProofError:
        raise ProofError("the client data's challenge is malformed") from None
    if signed_challenge != challenge_of(statement_text):
        raise ProofError("the signed challenge is not the hash of the statement")
    if client.get("origin") != statement["origin"]:
        raise ProofError(
            f"the assertion was made at {client.get('origin')!r}, not at {statement['origin']!r}"
        )
    auth_data = b64url_decode(assertion.authenticator_data)
    if len(auth_data) < 37:
        raise ProofError("the authenticator data is too short")
    if auth_data[:32] != hashlib.sha256(str(statement["rp_id"]).encode()).digest():
        raise ProofError("the authenticator data is for another relying party")
    flags = auth_data[32]
    if not flags & FLAG_USER_PRESENT:
        raise ProofError("the authenticator did not see the user present")
    if require_user_verification and not flags & FLAG_USER_VERIFIED:
        raise ProofError("the authenticator did not verify the user")
    key = load_public_key(public_key_spki)
    message = auth_data + hashlib.sha256(client_bytes).digest()
    if not _signature_holds(key, b64url_decode(assertion.signature), message):
        raise ProofError("the signature does not match the statement and the registered key")
    return statement


def sign_count_of(assertion: Assertion) -> int:
    data = b64url_decode(assertion.authenticator_data)
    return int.from_bytes(data[33:37], "big") if len(data) >= 37 else 0
