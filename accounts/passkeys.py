"""The relying party a browser talks to, and the WebAuthn options the server sends.

The ceremony itself (challenges, registration, revocation) is in
:mod:`accounts.services.passkeys`; the proof anyone can check is
:mod:`governance.kernel.passkey_proof`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from webauthn.helpers.structs import (
    PublicKeyCredentialDescriptor,
    UserVerificationRequirement,
)

from governance.kernel.errors import DomainError
from governance.kernel.passkey_proof import b64url_decode


@dataclass(frozen=True)
class RelyingParty:
    """Where a WebAuthn ceremony happens: the domain (RP id) and the page's origin."""

    rp_id: str
    origin: str


def relying_party(request: Any) -> RelyingParty:
    """The relying party of this request: ``WEBAUTHN_RP_ID`` (else the request's host), and
    the request's origin, which must be one of ``WEBAUTHN_ORIGINS`` when that is set."""
    host = request.get_host()
    scheme = "https" if request.is_secure() else "http"
    origin = f"{scheme}://{host}"
    rp_id = settings.WEBAUTHN_RP_ID or host.rsplit(":", 1)[0].strip("[]")
    allowed = settings.WEBAUTHN_ORIGINS
    if allowed and origin not in allowed:
        raise DomainError(
            f"Passkeys are not offered at {origin}; use {allowed[0]}.", field="origin"
        )
    return RelyingParty(rp_id=rp_id, origin=origin)


def user_verification() -> UserVerificationRequirement:
    return (
        UserVerificationRequirement.REQUIRED
        if settings.WEBAUTHN_REQUIRE_USER_VERIFICATION
        else UserVerificationRequirement.PREFERRED
    )


def descriptors(credential_ids: list[str]) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(id=b64url_decode(c)) for c in credential_ids]
