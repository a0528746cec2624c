"""What the access services share: new tokens, who may manage access, the tenant lock."""

from __future__ import annotations

import secrets

from accounts.models import (
    Tenant,
    User,
)
from accounts.selectors import token_digest

TOKEN_PREFIX = "gov_"  # noqa: S105 - a public marker, not a secret


#: Service tokens (machines of a tenant) start differently, so neither passes for the other.
SERVICE_TOKEN_PREFIX = "gsv_"  # noqa: S105 - a public marker, not a secret


def new_token(marker: str) -> tuple[str, str, str]:
    """A fresh 256-bit token starting with ``marker``: (raw token, shown prefix, digest)."""
    raw = marker + secrets.token_urlsafe(32)
    return raw, raw[:12], token_digest(raw)


def require_role_admin(actor: User | None, tenant: Tenant | None) -> None:
    """Only the system, a platform administrator, or the tenant's administrator manages access."""
    from accounts.permissions import can_manage_access

    can_manage_access(actor, tenant).require()


def lock_tenant(tenant: Tenant | None) -> None:
    """Serialise access changes in one tenant: take its row lock before any grant row.

    Two administrators revoking each other at once would otherwise each see the
    other still in place and leave the tenant with none.
    """
    if tenant is not None:
        Tenant.objects.select_for_update().filter(pk=tenant.pk).values_list("pk").first()
