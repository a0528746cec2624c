"""Who may do what: the :class:`Decision` every predicate answers, and the kernel's own predicates.

Each app keeps one predicate per action in its ``permissions`` module. The service calls it
and refuses with the reason (:meth:`Decision.require`); pages, serializers and templates call
the same function to show or hide the action, so the rule lives in one place. ``user=None``
is the system (a task, a migration): always allowed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from accounts.choices import Role
from accounts.selectors import AnyUser, is_platform_admin, roles_in_tenant
from governance.kernel.errors import Forbidden

if TYPE_CHECKING:
    from accounts.models import Tenant


@dataclass(frozen=True)
class Decision:
    """May this person do this? ``reason`` says why not (the message the service refuses with)."""

    allowed: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.allowed

    def require(self) -> None:
        """Refuse (Forbidden with the reason) unless allowed: what a service calls."""
        if not self.allowed:
            raise Forbidden(self.reason)


ALLOWED = Decision(True)


def deny(reason: str) -> Decision:
    return Decision(False, reason)


def roles_of(user: AnyUser | None, tenant: Tenant, roles: Iterable[str] | None = None) -> set[str]:
    """The roles ``user`` holds in ``tenant`` (``roles`` when the caller already read them)."""
    if user is None:
        return set()
    return set(roles) if roles is not None else roles_in_tenant(user, tenant)


# --- the event log ---------------------------------------------------------------------


def can_start_verification(user: AnyUser | None) -> Decision:
    """A platform administrator or an administrator of any tenant (it reads the whole log)."""
    from accounts.models import RoleGrant

    if user is None:
        return ALLOWED
    if is_platform_admin(user) or (
        user.is_authenticated
        and user.is_active
        and RoleGrant.objects.filter(
            user=user, role=Role.ADMINISTRATOR, revoked_at__isnull=True
        ).exists()
    ):
        return ALLOWED
    return deny("Only administrators can start a verification.")


def can_make_checkpoint(user: AnyUser | None) -> Decision:
    """Signing a tree head on demand is a platform administrator's act (the schedule is the system)."""
    if user is None or is_platform_admin(user):
        return ALLOWED
    return deny("Only a platform administrator can make a checkpoint on demand.")
