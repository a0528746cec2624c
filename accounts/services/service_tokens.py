"""Service tokens: a tenant's machines, with scopes; shown once, revoked with a reason."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.choices import TokenScope
from accounts.models import (
    ServiceToken,
    Tenant,
    User,
)
from accounts.services.common import SERVICE_TOKEN_PREFIX, new_token
from governance.kernel.errors import Conflict, DomainError
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import event_record
from governance.kernel.inputs import clean_text


def validate_scopes(scopes: Iterable[str] | str | None) -> list[str]:
    """The scopes asked for, known and deduplicated (sorted); refused naming ``scopes``."""
    if scopes is None or isinstance(scopes, str):
        scopes = [scopes] if scopes else []
    wanted = sorted({str(scope).strip() for scope in scopes} - {""})
    known = ", ".join(TokenScope.values)
    if not wanted:
        raise DomainError(f"Give at least one scope: {known}.", field="scopes")
    for scope in wanted:
        if scope not in TokenScope.values:
            raise DomainError(
                f"Unknown scope '{scope[:50]}'; choose from: {known}.", field="scopes"
            )
    return wanted


@transaction.atomic
def service_token_create(
    *,
    tenant: Tenant,
    name: str,
    scopes: Iterable[str],
    actor: User | None,
    expires_at: datetime | None = None,
) -> tuple[ServiceToken, str]:
    """Issue a token for a machine of ``tenant``; the raw token is returned here and never again.

    Administrators of the tenant (or platform administrators, or the system) only. Without
    ``expires_at`` it lives until revoked.
    """
    from accounts.permissions import can_manage_service_tokens

    name = clean_text(name, "name", limit=100)
    checked = validate_scopes(scopes)
    if expires_at is not None and expires_at <= timezone.now():
        raise DomainError("The expiry must be in the future.", field="expires_at")
    can_manage_service_tokens(actor, tenant).require()
    raw, prefix, digest = new_token(SERVICE_TOKEN_PREFIX)
    token = ServiceToken.objects.create(
        tenant=tenant,
        name=name,
        scopes=checked,
        prefix=prefix,
        digest=digest,
        created_by=actor,
        expires_at=expires_at,
    )
    event_record(
        kind=EventKind.SERVICE_TOKEN_CREATED,
        actor=actor,
        tenant=tenant,
        subject=token,
        payload={
            "tenant": tenant.slug,
            "name": name,
            "prefix": prefix,
            "scopes": checked,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return token, raw


@transaction.atomic
def service_token_revoke(*, token: ServiceToken, actor: User | None, reason: str) -> ServiceToken:
    """Revoke a service token, saying why.

    Its event bumps the runtime generation, so every server process drops its cached
    verification on the next request (see ``accounts.authentication``).
    """
    from accounts.permissions import can_manage_service_tokens

    reason = clean_text(reason, "reason", limit=500)
    current = ServiceToken.objects.select_for_update().select_related("tenant").get(pk=token.pk)
    can_manage_service_tokens(actor, current.tenant).require()
    if current.revoked_at is not None:
        raise Conflict(f"Service token {current.prefix}… is already revoked.", field="token")
    current.revoked_at = timezone.now()
    current.revoked_by = actor
    current.revoke_reason = reason
    current.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
    event_record(
        kind=EventKind.SERVICE_TOKEN_REVOKED,
        actor=actor,
        tenant=current.tenant,
        subject=current,
        payload={
            "tenant": current.tenant.slug,
            "name": current.name,
            "prefix": current.prefix,
            "reason": reason,
        },
    )
    return current
