"""What accounts tells the floors above it, through listeners they register at start-up.

accounts must never import reviews; reviews registers here in ``ReviewsConfig.ready()``.
With nothing registered, a revocation only revokes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: Called with ``user=``, ``role=`` and ``tenant=`` (None: platform-wide) inside the
#: revoking transaction, after the grant is revoked.
RoleRevokedListener = Callable[..., None]

_role_revoked: list[RoleRevokedListener] = []


def register_role_revoked(listener: RoleRevokedListener) -> None:
    """Register who acts when a role is revoked (idempotent)."""
    if listener not in _role_revoked:
        _role_revoked.append(listener)


def role_revoked(*, user: Any, role: str, tenant: Any) -> None:
    """Tell every registered listener that ``user`` no longer holds ``role`` in ``tenant``."""
    for listener in _role_revoked:
        listener(user=user, role=role, tenant=tenant)
