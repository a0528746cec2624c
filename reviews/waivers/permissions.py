"""Who may do what with waivers: one predicate per action.

Each predicate answers a :class:`Decision` (allowed, and the reason when not). The service
calls it and refuses with the reason (:meth:`Decision.require`); pages, serializers and
templates call the same function to show or hide the action, so the rule lives in one place.
``user=None`` is the system (a task, a migration): always allowed.

Predicates decide *who* may act. Whether the object is in a state that allows the action
(a waiver already revoked, say) stays a ``Conflict`` in the service; pages that hide an
action for its state combine the two in one helper here (:func:`waiver_actions`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from accounts.choices import Role
from accounts.selectors import AnyUser
from governance.kernel.permissions import ALLOWED, Decision, deny, roles_of
from reviews.waivers.choices import WaiverState

if TYPE_CHECKING:
    from accounts.models import Tenant
    from reviews.waivers.models import Waiver


GRANT_REASON = "Only an administrator of the tenant can grant a waiver."
AUTHOR_REASON = "The author of a change cannot waive its checks."


def can_grant_waiver(
    user: AnyUser | None,
    tenant: Tenant,
    change: Any | None = None,
    *,
    roles: Iterable[str] | None = None,
) -> Decision:
    """An administrator of the tenant, never the author of the change the waiver covers."""
    if user is None:
        return ALLOWED
    if Role.ADMINISTRATOR not in roles_of(user, tenant, roles):
        return deny(GRANT_REASON)
    if change is not None and change.author_id == user.pk:
        return deny(AUTHOR_REASON)
    return ALLOWED


def may_grant_waivers(user: AnyUser) -> bool:
    """Whether ``user`` may grant a waiver in at least one tenant (where to offer the form)."""
    from accounts.selectors import access_by_tenant

    return any(
        can_grant_waiver(user, row.tenant, roles=row.roles) for row in access_by_tenant(user)
    )


def can_renew_waiver(
    user: AnyUser | None, waiver: Waiver, *, roles: Iterable[str] | None = None
) -> Decision:
    """A renewal is a new grant: the same people as for a grant."""
    return can_grant_waiver(user, waiver.tenant, waiver.change, roles=roles)


def can_revoke_waiver(
    user: AnyUser | None, waiver: Waiver, *, roles: Iterable[str] | None = None
) -> Decision:
    """An administrator or a security officer of the waiver's tenant."""
    if user is None:
        return ALLOWED
    if not {Role.ADMINISTRATOR, Role.SECURITY_OFFICER} & roles_of(user, waiver.tenant, roles):
        return deny("Only an administrator or a security officer can revoke a waiver.")
    return ALLOWED


def can_countersign_waiver(
    user: AnyUser | None, waiver: Waiver, *, roles: Iterable[str] | None = None
) -> Decision:
    """A security officer of the tenant who neither granted the waiver nor wrote its change."""
    if user is None:
        return deny("Only a security officer of the tenant can countersign.")
    if Role.SECURITY_OFFICER not in roles_of(user, waiver.tenant, roles):
        return deny("Only a security officer of the tenant can countersign.")
    if waiver.granted_by_id == user.pk:
        return deny("The administrator who granted a waiver cannot also countersign it.")
    if waiver.change_id is not None and waiver.change and waiver.change.author_id == user.pk:
        return deny(AUTHOR_REASON)
    return ALLOWED


@dataclass
class WaiverActions:
    """Which actions a waiver's page offers this person now (who may, and the waiver's state)."""

    renew: bool
    revoke: bool
    countersign: bool


def waiver_actions(user: AnyUser, waiver: Waiver, state: str) -> WaiverActions:
    roles = roles_of(user, waiver.tenant)
    renewed = hasattr(waiver, "renewal")
    return WaiverActions(
        renew=bool(can_renew_waiver(user, waiver, roles=roles))
        and state != WaiverState.REVOKED
        and not renewed,
        revoke=bool(can_revoke_waiver(user, waiver, roles=roles))
        and state not in (WaiverState.REVOKED, WaiverState.EXPIRED),
        countersign=bool(can_countersign_waiver(user, waiver, roles=roles))
        and state == WaiverState.PENDING,
    )
