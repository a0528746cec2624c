"""Passkeys: register one (a WebAuthn ceremony in two steps), revoke one.

Registering and revoking are logged (``passkey.registered`` carries the public key, so the
offline verifier can check every passkey sign-off from an exported log alone).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import webauthn
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from webauthn.helpers import decode_credential_public_key, decoded_public_key_to_cryptography
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    ResidentKeyRequirement,
)

from accounts.models import Passkey, PasskeyChallenge, User
from accounts.passkeys import RelyingParty, descriptors, user_verification
from accounts.selectors import is_platform_admin
from governance.kernel.errors import Conflict, DomainError, Forbidden, NotFound
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import event_record
from governance.kernel.notifications import notification_send
from governance.kernel.passkey_proof import b64url_encode

#: Where a person sees their passkeys (the account page's section).
ACCOUNT_PASSKEYS_URL = "/account/tokens/#passkeys"

#: A person keeps a handful of passkeys (a laptop, a phone, a security key), not hundreds.
MAX_PASSKEYS = 20


def _expiry() -> Any:
    return timezone.now() + timedelta(seconds=settings.WEBAUTHN_CHALLENGE_SECONDS)


def _active_credentials(user: User) -> list[str]:
    return list(
        Passkey.objects.filter(user=user, revoked_at__isnull=True).values_list(
            "credential_id", flat=True
        )
    )


@transaction.atomic
def passkey_registration_begin(*, user: User, party: RelyingParty) -> tuple[PasskeyChallenge, str]:
    """Issue a registration challenge: the challenge row and the options (JSON) for
    ``navigator.credentials.create``. Nothing is logged until a passkey is registered."""
    if not user.is_active:
        raise Forbidden("A deactivated account cannot register a passkey.")
    existing = _active_credentials(user)
    if len(existing) >= MAX_PASSKEYS:
        raise Conflict(
            f"You have {MAX_PASSKEYS} passkeys; revoke one before adding another.", field="name"
        )
    options = webauthn.generate_registration_options(
        rp_id=party.rp_id,
        rp_name=settings.WEBAUTHN_RP_NAME,
        user_id=user.pk.bytes,
        user_name=user.get_username(),
        user_display_name=user.get_full_name() or user.get_username(),
        exclude_credentials=descriptors(existing),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=user_verification(),
        ),
        timeout=settings.WEBAUTHN_CHALLENGE_SECONDS * 1000,
    )
    challenge = PasskeyChallenge.objects.create(
        user=user,
        purpose=PasskeyChallenge.Purpose.REGISTER,
        challenge=b64url_encode(options.challenge),
        rp_id=party.rp_id,
        origin=party.origin,
        expires_at=_expiry(),
    )
    return challenge, webauthn.options_to_json(options)


def take_challenge(challenge_id: Any, *, user: User, purpose: str) -> PasskeyChallenge:
    """Lock an unused, unexpired challenge of ``user`` for ``purpose`` and mark it used (in the
    caller's transaction): a challenge answers one ceremony, once."""
    try:
        challenge = (
            PasskeyChallenge.objects.select_for_update()
            .filter(pk=challenge_id, user=user, purpose=purpose)
            .first()
        )
    except (ValueError, TypeError, ValidationError):  # not a UUID
        challenge = None
    if challenge is None:
        raise NotFound("There is no such passkey challenge of yours.", field="challenge")
    if challenge.used_at is not None:
        raise Conflict(
            "That passkey challenge was already answered; ask for a new one.", field="challenge"
        )
    if challenge.expires_at <= timezone.now():
        raise Conflict("That passkey challenge has expired; ask for a new one.", field="challenge")
    challenge.used_at = timezone.now()
    challenge.save(update_fields=["used_at"])
    return challenge


def _spki(cose: bytes) -> str:
    key = decoded_public_key_to_cryptography(decode_credential_public_key(cose))
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return b64url_encode(der)


def _credential_text(credential: Any) -> str:
    if isinstance(credential, str):
        return credential
    if isinstance(credential, dict):
        return json.dumps(credential)
    raise DomainError("The credential must be the JSON WebAuthn returned.", field="credential")


@transaction.atomic
def passkey_register(*, user: User, challenge_id: Any, credential: Any, name: str = "") -> Passkey:
    """Answer a registration challenge with the authenticator's new credential; log its key."""
    name = (name or "").strip() or "Passkey"
    if len(name) > 100:
        raise DomainError("A passkey's name is at most 100 characters.", field="name")
    challenge = take_challenge(challenge_id, user=user, purpose=PasskeyChallenge.Purpose.REGISTER)
    try:
        verified = webauthn.verify_registration_response(
            credential=_credential_text(credential),
            expected_challenge=bytes(webauthn.base64url_to_bytes(challenge.challenge)),
            expected_rp_id=challenge.rp_id,
            expected_origin=challenge.origin,
            require_user_verification=settings.WEBAUTHN_REQUIRE_USER_VERIFICATION,
        )
        spki = _spki(verified.credential_public_key)
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:  # any malformed part
        raise DomainError(
            f"The authenticator's answer does not register a passkey: {exc}", field="credential"
        ) from None
    credential_id = b64url_encode(verified.credential_id)
    if Passkey.objects.filter(credential_id=credential_id).exists():
        raise Conflict("That passkey is already registered.", field="credential")
    transports = []
    if isinstance(credential, dict):
        found = (credential.get("response") or {}).get("transports") or []
        transports = [str(t)[:20] for t in found if isinstance(t, str)][:8]
    passkey = Passkey.objects.create(
        user=user,
        name=name,
        credential_id=credential_id,
        public_key_cose=b64url_encode(verified.credential_public_key),
        public_key_spki=spki,
        algorithm=_algorithm(verified.credential_public_key),
        sign_count=verified.sign_count,
        aaguid=verified.aaguid,
        transports=transports,
        backed_up=bool(verified.credential_backed_up),
        rp_id=challenge.rp_id,
    )
    event_record(
        kind=EventKind.PASSKEY_REGISTERED,
        actor=user,
        subject=passkey,
        payload={
            "user_id": str(user.pk),
            "username": user.get_username(),
            "name": passkey.name,
            "credential_id": credential_id,
            "algorithm": passkey.algorithm,
            "public_key_cose": passkey.public_key_cose,
            "public_key_spki": spki,
            "aaguid": passkey.aaguid,
            "rp_id": passkey.rp_id,
            "backed_up": passkey.backed_up,
        },
    )
    notification_send(
        users=[user],
        title=f"A passkey was added to your account: '{passkey.name}'",
        body=(
            "It can sign your approvals from now on. If you did not add it, revoke it on your "
            "account page and tell your security officer."
        ),
        url=ACCOUNT_PASSKEYS_URL,
        dedupe_key=f"passkey:{passkey.pk}:registered",
    )
    return passkey


def _algorithm(cose: bytes) -> int:
    decoded = decode_credential_public_key(cose)
    return int(decoded.alg) if decoded.alg is not None else 0


def can_revoke(actor: User | None, passkey: Passkey) -> bool:
    """Its owner, or a platform administrator (say, for a lost laptop); the system too."""
    return actor is None or actor.pk == passkey.user_id or is_platform_admin(actor)


@transaction.atomic
def passkey_revoke(*, passkey: Passkey, actor: User | None, reason: str = "") -> Passkey:
    """Revoke a passkey: it signs nothing more, and approvals it signed stop counting."""
    if not can_revoke(actor, passkey):
        raise Forbidden("Only its owner or a platform administrator can revoke a passkey.")
    reason = (reason or "").strip()
    if len(reason) > 500:
        raise DomainError("The reason is at most 500 characters.", field="reason")
    locked = Passkey.objects.select_for_update().select_related("user").get(pk=passkey.pk)
    if locked.revoked_at is not None:
        return locked  # revoking twice changes nothing
    locked.revoked_at = timezone.now()
    locked.revoked_by = actor
    locked.revoke_reason = reason
    locked.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
    event_record(
        kind=EventKind.PASSKEY_REVOKED,
        actor=actor,
        subject=locked,
        payload={
            "user_id": str(locked.user_id),
            "username": locked.user.get_username(),
            "credential_id": locked.credential_id,
            "reason": reason,
        },
    )
    by = (
        "you"
        if actor is not None and actor.pk == locked.user_id
        else (actor.get_username() if actor is not None else "the system")
    )
    notification_send(
        users=[locked.user],
        title=f"Your passkey '{locked.name}' was revoked by {by}",
        body=(
            f"{reason or 'No reason given.'} It signs nothing more, and approvals it signed on "
            "open changes stop counting."
        ),
        url=ACCOUNT_PASSKEYS_URL,
        dedupe_key=f"passkey:{locked.pk}:revoked",
    )
    return locked
